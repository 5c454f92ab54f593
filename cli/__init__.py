"""leadflow's command line: parses arguments, calls the engine, prints. No decisions live here."""
