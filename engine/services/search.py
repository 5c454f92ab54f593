"""Search: clients and leads by name, company, e-mail, phone, tax id or lead id (``engine.search``).

The folding and the reading of the text are engine/search.py's; here are the queries, run only over what the
acting user may see (``policy.visible_clients``), and the ranking of their hits (exact, prefix, partial).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import calendar, clock, policy, results
from engine.board import light_of
from engine.policy import Actor
from engine.search import PARTIAL_MIN, SEARCH_NAME_LENGTH, Query, check_limit, fold, parse_query
from engine.services.context import Service, operation
from engine.spec import ProcessSpec
from engine.store import clients, leads
from engine.vocab import LeadStatus

if TYPE_CHECKING:
    from engine.store.sqltypes import Mapping

_SQLITE_PARTIAL = "client_search"  # the FTS5 table of partial matches (migration 0008)
_FTS = sa.table(_SQLITE_PARTIAL, sa.column("rowid", sa.Integer), sa.column("search_key", sa.Text))


class SearchService(Service):
    """``engine.search``: find anyone in a second."""

    name = "search"

    @operation
    def find(self, text: str, *, limit: int = 20) -> list[results.SearchHit]:
        """Clients and leads matching ``text`` (a name, company, e-mail, phone in any format, tax id or lead id;
        case and Latin diacritics do not matter), among those the acting user may see: exact matches first,
        then prefixes, then partial ones; each hit with its open lead, stage, owner and light."""
        query = parse_query(text)
        check_limit(limit)
        ctx = self.ctx
        with ctx.reading() as conn:
            actor = ctx.actor(conn)
            return find(conn, actor, query, limit=limit, now=clock.now(), spec_of=ctx.specs_lookup(conn))


def client_ids_matching(conn: Connection, q: Query) -> sa.Select[Any]:
    """The ids of every client ``q`` matches, by any rank (``lead list --search``), as a subquery."""
    ids = sa.select(clients.c.id)
    parts: list[sa.ColumnElement[bool]] = []
    if q.phone is not None:
        parts.append(clients.c.phone_norm == q.phone)
    if q.email is not None:
        parts.append(clients.c.email_norm == q.email)
    if q.folded:
        parts.append(sa.and_(*prefix_of(conn, clients.c.search_name, q.folded)))
        if len(q.folded) >= PARTIAL_MIN:
            parts.append(partial_match(conn, q.folded))
    if q.lead_id is not None:
        parts.append(clients.c.id.in_(sa.select(leads.c.client_id).where(leads.c.id == q.lead_id)))
    return ids.where(sa.or_(*parts), clients.c.merged_into.is_(None))


Rank = int
EXACT, PREFIX, PARTIAL = 0, 1, 2
RANKS = ("exact", "prefix", "partial")


def matching_clients(conn: Connection, actor: Actor, q: Query, limit: int) -> dict[int, tuple[Rank, str]]:
    """The ids of clients the actor may see that match ``q``, each with its rank and the field it matched by;
    at most ``limit`` per kind of match (the caller ranks them together and cuts)."""
    found: dict[int, tuple[Rank, str]] = {}

    def take(query: sa.Select[Any], rank: Rank, field: str, exact_name: str | None = None) -> None:
        query = query.where(clients.c.merged_into.is_(None))
        for client_id, *name in conn.execute(policy.visible_clients(actor, query).limit(limit)):
            hit = EXACT if exact_name is not None and name[0] == exact_name else rank
            if client_id not in found or found[client_id][0] > hit:
                found[client_id] = (hit, field)

    ids = sa.select(clients.c.id)
    if q.lead_id is not None:
        take(ids.where(clients.c.id.in_(sa.select(leads.c.client_id).where(leads.c.id == q.lead_id))), EXACT, "lead")
    if q.phone is not None:
        take(ids.where(clients.c.phone_norm == q.phone), EXACT, "phone")
    if q.email is not None:
        take(ids.where(clients.c.email_norm == q.email), EXACT, "email")
    if q.folded:
        prefixed = sa.select(clients.c.id, clients.c.search_name).where(
            *prefix_of(conn, clients.c.search_name, q.folded)).order_by(name_order(conn))
        if len(q.folded) <= SEARCH_NAME_LENGTH:
            # the exact names are the prefix query's first rows (in name order the text itself comes before every
            # longer name that starts with it): one statement for both
            take(prefixed, PREFIX, "name", exact_name=q.folded)
        else:  # a stored name is cut at SEARCH_NAME_LENGTH: the text, longer, is no prefix of it
            take(ids.where(clients.c.search_name == q.folded[:SEARCH_NAME_LENGTH]), EXACT, "name")
            take(prefixed, PREFIX, "name")
        # a phone's digits are stored without spaces; a number found whole needs no partial match, and a
        # partial match ranks below ``limit`` exact and prefix hits (a trigram search of text that matches
        # little reads the whole of its trigrams' lists: the slowest query there is)
        partial = q.digits if q.phone is not None or q.digits == q.folded.replace(" ", "") else q.folded
        phone_found = q.phone is not None and any(f == "phone" for _, f in found.values())
        if len(partial) >= PARTIAL_MIN and not phone_found and len(found) < limit:
            sees_all = policy.visible_clients(actor, ids) is ids
            take(partial_ids(conn, partial, limit if sees_all else None), PARTIAL, "key")
    return found


def prefix_of(conn: Connection, column: sa.Column[Any], text: str) -> list[sa.ColumnElement[bool]]:
    """``column`` starts with ``text`` (folded text has no LIKE wildcards), as its index can answer it: a range on
    SQLite (binary order), ``LIKE 'text%'`` on PostgreSQL (the index's ``varchar_pattern_ops``)."""
    if conn.dialect.name == "postgresql":
        return [column.like(text + "%")]
    return [column >= text, column < text + "\U0010ffff"]


def name_order(conn: Connection) -> sa.ColumnElement[Any] | sa.TextClause:
    """Prefix hits in ``search_name`` order as the index holds it, so the first ``limit`` are read from the index
    and not sorted out of every match (thousands for ``grzegorz brz`` at a million clients): on PostgreSQL the
    ``varchar_pattern_ops`` index is in byte order, the order of ``~<~`` (and of the C collation, SQLite's and
    Python's alike), which a plain ORDER BY in another collation would not use."""
    if conn.dialect.name == "postgresql":
        return sa.text("clients.search_name USING ~<~")
    return clients.c.search_name


def partial_ids(conn: Connection, folded: str, limit: int | None) -> sa.Select[Any]:
    """The clients whose ``search_key`` contains ``folded``. On SQLite the FTS5 table answers, as a list of ids
    that ``limit`` cuts short for a user who sees every client (a join would let SQLite probe the index once per
    client); a user who sees some clients gets every match, filtered by what they see."""
    anchored = _anchored_matches(conn, folded)
    if anchored is not None:
        return sa.select(clients.c.id).where(clients.c.id.in_(anchored if limit is None else anchored[:limit]))
    if conn.dialect.name == "sqlite" and has_fts(conn):
        matches = sa.select(_FTS.c.rowid).where(_FTS.c.search_key.like(f"%{folded}%"))
        return sa.select(clients.c.id).where(clients.c.id.in_(matches if limit is None else matches.limit(limit)))
    return sa.select(clients.c.id).where(partial_match(conn, folded))


# a trigram phrase is the word as a substring; MATCH, unlike LIKE, does not read each match's row to check it
_ANCHOR = sa.text(f"SELECT rowid FROM {_SQLITE_PARTIAL} WHERE {_SQLITE_PARTIAL} MATCH :phrase LIMIT :n")
#: How many clients an anchor word may match for ``_anchored_matches`` to check them one by one.
ANCHOR_CANDIDATES = 500


def _anchored_matches(conn: Connection, folded: str) -> list[int] | None:
    """Every client whose ``search_key`` contains ``folded``, in id order (the FTS5 table's), found through one of
    its words when that word matches at most ``ANCHOR_CANDIDATES`` clients; None when no word is that rare, or
    there is no trigram index to find the word with.

    A trigram index (FTS5's, and pg_trgm's GIN index alike) answers ``LIKE '%text%'`` by reading the whole list of
    each of the text's trigrams, so a long text of common words (an exact name: ``grzegorz brzeczyszczykiewicz
    4711``) costs the sum of their lists even when it matches one client. A rare word's few matches, checked
    against the whole text in ``clients``, give the same ids at a fraction of that. The anchor is the
    rarest-looking word (one with digits, else the longest); one that matches too many is given up after reading
    ``ANCHOR_CANDIDATES + 1`` of its matches (a second guess costs more than it saves: a long common word's
    trigrams are read whole before its first match); PostgreSQL checks them itself and takes ten times as many
    (``_anchored_in_sql``)."""
    words = sorted({w for w in folded.split(" ") if len(w) >= PARTIAL_MIN},
                   key=lambda w: (not any(ch.isdigit() for ch in w), -len(w), w))
    if not words or words[0] == folded:
        return None  # one word: the text's own query is the anchor's
    if conn.dialect.name == "sqlite" and has_fts(conn):
        ids = [int(r[0]) for r in conn.execute(_ANCHOR, {"phrase": f'"{words[0]}"', "n": ANCHOR_CANDIDATES + 1})]
        keys = None if len(ids) > ANCHOR_CANDIDATES else conn.execute(
            sa.select(clients.c.id, clients.c.search_key).where(clients.c.id.in_(ids))).all()
    elif conn.dialect.name == "postgresql" and has_trigram_index(conn):
        return _anchored_in_sql(conn, words[0], folded, ANCHOR_CANDIDATES * PG_ANCHOR_FACTOR)
    else:
        return None  # without an index the word's matches are a scan, and the text's own another
    if keys is None or len(keys) > ANCHOR_CANDIDATES:
        return None
    # checked here, not by a second LIKE: PostgreSQL would answer that through the trigram index again
    return sorted(int(client_id) for client_id, key in keys if folded in key)


#: On PostgreSQL an anchor word's matches are checked against the whole text in SQL (only the ids that pass come
#: back), so a word may match this many times ``ANCHOR_CANDIDATES``: reading 5,000 rows of the table costs less than
#: the whole text's GIN scan of a long text's common trigrams (docs/performance.md, "Search at a million clients").
PG_ANCHOR_FACTOR = 10


def _anchored_in_sql(conn: Connection, word: str, folded: str, most: int) -> list[int] | None:
    """``_anchored_matches`` on PostgreSQL, in one statement answering one row: how many clients' keys have ``word``
    (through the GIN index, whose scan reads only the word's trigrams; at most ``most + 1``), and the ids of those
    whose key has ``folded`` (``strpos``, which no index answers, so the scan is not widened to the whole text's
    trigrams); None when the word matches more than ``most``."""
    candidates = (sa.select(clients.c.id, clients.c.search_key).where(clients.c.search_key.like(f"%{word}%"))
                  .limit(most + 1).subquery("candidates"))
    count, ids = conn.execute(sa.select(
        sa.func.count(), sa.func.array_agg(candidates.c.id).filter(sa.func.strpos(candidates.c.search_key, folded) > 0)
    )).one()
    if count > most:
        return None
    return sorted(int(client_id) for client_id in ids or ())


def partial_match(conn: Connection, folded: str) -> sa.ColumnElement[bool]:
    """``search_key`` contains ``folded``: through the trigram index where there is one."""
    pattern = f"%{folded}%"
    if conn.dialect.name == "sqlite" and has_fts(conn):
        return clients.c.id.in_(sa.text(f"SELECT rowid FROM {_SQLITE_PARTIAL} WHERE search_key LIKE :pattern")
                                .bindparams(pattern=pattern))
    return clients.c.search_key.like(pattern)


def has_trigram_index(conn: Connection) -> bool:
    """Whether this PostgreSQL schema has pg_trgm's GIN index of partial matches (migration 0008 made it if it
    could)."""
    cached = conn.info.get("leadflow_trigram_index")
    if cached is None:
        cached = conn.execute(sa.text(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = :n"),
            {"n": "ix_clients_search_key_trgm"}).scalar() == 1
        conn.info["leadflow_trigram_index"] = cached
    return bool(cached)


def has_fts(conn: Connection) -> bool:
    """Whether this SQLite database has the FTS5 table of partial matches (migration 0008 made it if it could)."""
    cached = conn.info.get("leadflow_fts")
    if cached is None:
        cached = conn.execute(sa.text("SELECT count(*) FROM sqlite_master WHERE name = :n"),
                              {"n": _SQLITE_PARTIAL}).scalar() == 1
        conn.info["leadflow_fts"] = cached
    return bool(cached)


def rank_of(q: Query, row: Mapping, found: tuple[Rank, str]) -> tuple[Rank, str]:
    """A hit's final rank: a partial match of the key that is really a whole field, or a word's start, moves up."""
    rank, field = found
    if rank == EXACT:
        return found
    company = fold(row["company"] or "")
    if q.folded and q.folded == company:
        return EXACT, "company"
    if q.folded and (row["tax_id"] and q.folded == fold(row["tax_id"])):
        return EXACT, "tax_id"
    if rank == PARTIAL:
        words = f" {row['search_key']}"
        if f" {q.folded}" in words:
            return PREFIX, "name" if f" {q.folded}" in f" {row['search_name']}" else "key"
    return rank, field


def find(conn: Connection, actor: Actor, q: Query, *, limit: int, now: dt.datetime,
         spec_of: Callable[[str, int], ProcessSpec]) -> list[results.SearchHit]:
    """The clients (and their leads) the actor may see that match ``q``, best first, at most ``limit``."""
    found = matching_clients(conn, actor, q, limit)
    if not found:
        return []
    rows = {r["id"]: r for r in conn.execute(sa.select(clients).where(clients.c.id.in_(list(found)))).mappings()}
    ranked = sorted(((*rank_of(q, rows[i], found[i]), rows[i]["search_name"], i) for i in found),
                    key=lambda t: (t[0], t[2], t[3]))[:limit]
    chosen = [t[3] for t in ranked]
    lead_rows: dict[int, Any] = {}
    visible = policy.visible_leads(actor, sa.select(leads).where(leads.c.client_id.in_(chosen)))
    for r in conn.execute(visible.order_by(leads.c.id)).mappings():
        best = lead_rows.get(r["client_id"])
        if best is None or _better(r, best, q.lead_id):
            lead_rows[r["client_id"]] = r
    hits: list[results.SearchHit] = []
    for rank, field, _name, client_id in ranked:
        c, lead = rows[client_id], lead_rows.get(client_id)
        hits.append({
            "client_id": client_id, "name": c["name"], "company": c["company"], "email": c["email"],
            "phone": c["phone"], "tax_id": c["tax_id"], "match": RANKS[rank], "matched": field,
            "lead_id": lead["id"] if lead is not None else None,
            "process": lead["process"] if lead is not None else None,
            "stage": lead["stage"] if lead is not None else None,
            "status": lead["status"] if lead is not None else None,
            "owner": lead["owner"] if lead is not None else None,
            "light": _light(lead, now, spec_of) if lead is not None else None,
        })
    return hits


def _better(row: Mapping, best: Mapping, lead_id: int | None) -> bool:
    """The lead a hit shows: the one searched for by id, else the newest open one, else the newest."""
    if lead_id is not None and (row["id"] == lead_id or best["id"] == lead_id):
        return int(row["id"]) == lead_id
    row_open, best_open = row["status"] == LeadStatus.OPEN, best["status"] == LeadStatus.OPEN
    return bool(row_open > best_open or (row_open == best_open and row["id"] > best["id"]))


def _light(lead: Mapping, now: dt.datetime, spec_of: Callable[[str, int], ProcessSpec]) -> str | None:
    if lead["status"] != LeadStatus.OPEN:
        return None
    spec = spec_of(lead["process"], lead["process_version"])
    stage = spec.stage(lead["stage"])
    yellow_until = calendar.last_yellow_deadline(now, stage.warning_days if stage else 0, spec.calendar)
    return light_of(lead["red_at"], now, yellow_until)


