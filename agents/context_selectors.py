"""Reads for the customer context panel and for search (issue 11), filtered by what the
agent may see (`selectors.visible_page_ids`). Apart from `agents.selectors` so that the
branches of issue 11 merge without touching each other.

Search matches contacts (name, PSID: `icontains`) and message texts: on PostgreSQL with
its full-text search ('simple' configuration, the last word as a prefix) on the GIN
index of migration 0013 (`to_tsvector('simple', translate(text, …))`, the very
expression of `TextMatch`); on SQLite with `LIKE`. Results are tickets, newest match
first, a page at a time with a keyset on (newest match, ticket id): three queries a page
(plus the visibility's), whatever the number of messages; the grouping itself reads
every match, which the index finds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connection
from django.db.models import (
    BooleanField,
    F,
    Func,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber
from django.db.models.sql.compiler import SQLCompiler

from agents.errors import InvalidInput
from agents.models import Agent, Contact, Message, Ticket, TicketEvent
from agents.selectors import visible_page_ids
from webhooks.events import timestamp_to_datetime

# --- the context panel -----------------------------------------------------------------

EARLIER_TICKETS_MAX = 50


@dataclass(frozen=True)
class EarlierTicket:
    """Another ticket of the customer, opened before the one the panel is beside; the
    agent who had it, and who closed it (their last close)."""

    ticket: Ticket
    closed_by: Agent | None


@dataclass(frozen=True)
class ContactContext:
    ticket: Ticket  # with conversation, page, contact and the note's author read
    contact: Contact
    first_seen: datetime
    earlier: list[EarlierTicket]
    earlier_more: bool


def ticket_context(*, user: Agent, ticket_id: int) -> ContactContext | None:
    """The customer of a ticket the agent may see (None otherwise: not told apart from a
    ticket that does not exist), first seen (the contact's creation or its first
    message, whichever came first) and their tickets opened before this one, newest
    first (at most EARLIER_TICKETS_MAX). Four queries besides the visibility's."""
    tickets = Ticket.objects.select_related(
        "conversation__page", "conversation__contact__note_updated_by"
    )
    visible = visible_page_ids(user)
    if visible is not None:
        tickets = tickets.filter(conversation__page_id__in=visible)
    ticket = tickets.filter(pk=ticket_id).first()
    if ticket is None:
        return None
    contact = ticket.conversation.contact
    first_seen = contact.created_at
    first_ts = (
        Message.objects.filter(conversation_id=ticket.conversation_id)
        .order_by("timestamp")
        .values_list("timestamp", flat=True)
        .first()
    )
    if first_ts is not None:
        first_seen = min(first_seen, timestamp_to_datetime(first_ts))
    closings = TicketEvent.objects.filter(kind=TicketEvent.Kind.CLOSED).select_related("actor")
    earlier = list(
        Ticket.objects.filter(conversation_id=ticket.conversation_id)
        .filter(Q(opened_at__lt=ticket.opened_at) | Q(opened_at=ticket.opened_at, pk__lt=ticket.pk))
        .select_related("assignee")
        .prefetch_related(
            Prefetch("events", queryset=closings.order_by("created_at", "id"), to_attr="closings")
        )
        .order_by("-opened_at", "-id")[: EARLIER_TICKETS_MAX + 1]
    )
    return ContactContext(
        ticket=ticket,
        contact=contact,
        first_seen=first_seen,
        earlier=[
            EarlierTicket(
                ticket=row,
                closed_by=row.closings[-1].actor if row.closings else None,
            )
            for row in earlier[:EARLIER_TICKETS_MAX]
        ],
        earlier_more=len(earlier) > EARLIER_TICKETS_MAX,
    )


# --- search ----------------------------------------------------------------------------

QUERY_MIN_CHARS = 2  # letters and digits, in all the query's words
QUERY_MAX_CHARS = 200
QUERY_MAX_WORDS = 8
SNIPPETS_PER_TICKET = 3
SNIPPET_CHARS = 160
SNIPPET_BEFORE = 50  # characters kept before the first match in a long text

_WORD = re.compile(r"[^\W_]+")


def search_terms(query: str) -> list[str]:
    """The words of a query (letters and digits), lowercased, each once, in order.
    InvalidInput, in words, for a query too long, too short or of too many words. An
    empty query is the caller's: it finds nothing without asking."""
    query = query.strip()
    if len(query) > QUERY_MAX_CHARS:
        raise InvalidInput(
            f"The search is too long: {len(query)} characters, at most {QUERY_MAX_CHARS}."
        )
    terms = list(dict.fromkeys(word.lower() for word in _WORD.findall(query)))
    if sum(len(term) for term in terms) < QUERY_MIN_CHARS:
        raise InvalidInput(f"Type at least {QUERY_MIN_CHARS} letters or digits to search.")
    if len(terms) > QUERY_MAX_WORDS:
        raise InvalidInput(f"Search for at most {QUERY_MAX_WORDS} words at a time.")
    return terms


def _full_text() -> bool:
    return connection.vendor == "postgresql"


# ASCII punctuation, made spaces before PostgreSQL's parser reads a text (its index is
# built on the same expression: migration 0013 has a copy). Not the quote, the percent
# sign or the backslash: they would need escaping in SQL, and the parser splits words at
# them anyway.
PUNCTUATION = '!"#$&()*+,-./:;<=>?@[]^_`{|}~'


def _words_sql(text_sql: str) -> str:
    return f"translate({text_sql}, '{PUNCTUATION}', '{' ' * len(PUNCTUATION)}')"


class TextMatch(Func):
    """`to_tsvector('simple', translate(text, …)) @@ to_tsquery('simple', query)`:
    PostgreSQL's full-text match on the words of a text (its punctuation made spaces),
    written exactly as the GIN index `agents_message_text_fts` is (migration 0013), so
    that the planner uses it."""

    output_field = BooleanField()

    def as_sql(  # type: ignore[override]
        self, compiler: SQLCompiler, connection: Any, **extra_context: Any
    ) -> tuple[str, list[Any]]:
        text, query = self.get_source_expressions()
        text_sql, text_params = compiler.compile(text)
        query_sql, query_params = compiler.compile(query)
        return (
            f"to_tsvector('simple', {_words_sql(text_sql)}) @@ to_tsquery('simple', {query_sql})",
            [*text_params, *query_params],
        )


def tsquery(terms: list[str]) -> str:
    """Every word, the last one as a prefix (the agent may still be typing it). The words
    hold letters and digits only: nothing in them is tsquery syntax."""
    return " & ".join([*terms[:-1], f"{terms[-1]}:*"])


def _message_match(terms: list[str]) -> Q | TextMatch:
    if _full_text():
        return TextMatch(F("text"), Value(tsquery(terms)))
    match = Q()
    for term in terms:
        match &= Q(text__icontains=term)
    return match


def _contact_match(terms: list[str], prefix: str = "") -> Q:
    match = Q()
    for term in terms:
        match &= (
            Q(**{f"{prefix}first_name__icontains": term})
            | Q(**{f"{prefix}last_name__icontains": term})
            | Q(**{f"{prefix}psid__icontains": term})
        )
    return match


def _searched_messages(terms: list[str]) -> QuerySet[Message]:
    """Messages whose text matches (system lines are not searched), each with `tid`, the
    ticket it is found under: its own, or for context outside any ticket (the bot's
    part), the conversation's latest ticket, whose timeline shows it too."""
    latest = (
        Ticket.objects.filter(conversation_id=OuterRef("conversation_id"))
        .order_by("-opened_at", "-id")
        .values("pk")[:1]
    )
    return (
        Message.objects.filter(_message_match(terms))
        .exclude(author_kind=Message.Author.SYSTEM)
        .annotate(tid=Coalesce("ticket_id", Subquery(latest)))
        .order_by()
    )


class SearchPosition(NamedTuple):
    """Where a result stands: its newest match (epoch ms) and its ticket id, descending."""

    at: int
    id: int


def search_groups_sql(
    *,
    terms: list[str],
    visible: set[int] | None,
    after: SearchPosition | None,
    limit: int,
) -> tuple[str, list[Any]]:
    """One query: the tickets that match, as (ticket id, newest match, message matches),
    newest first, after `after`, `limit` of them. A ticket matches by its contact (its
    time is then the handover's) or by messages found under it (`_searched_messages`)."""
    messages = _searched_messages(terms)
    tickets = Ticket.objects.filter(_contact_match(terms, "conversation__contact__"))
    if visible is not None:
        messages = messages.filter(conversation__page_id__in=visible)
        tickets = tickets.filter(conversation__page_id__in=visible)
    message_sql, message_params = (
        messages.annotate(at=F("timestamp"), hit=Value(1)).values("tid", "at", "hit").query
    ).sql_with_params()
    ticket_sql, ticket_params = (
        tickets.annotate(tid=F("pk"), at=F("handover_timestamp"), hit=Value(0))
        .values("tid", "at", "hit")
        .order_by()
        .query
    ).sql_with_params()
    where, where_params = "", []
    if after is not None:
        where = "WHERE g.at < %s OR (g.at = %s AND g.tid < %s)"
        where_params = [after.at, after.at, after.id]
    # Only SQL that Django compiled and our own words are put together: every value is a
    # parameter.
    sql = (
        "SELECT g.tid, g.at, g.hits FROM ("  # noqa: S608
        "SELECT hits.tid AS tid, MAX(hits.at) AS at, SUM(hits.hit) AS hits FROM ("
        f"{message_sql} UNION ALL {ticket_sql}"
        ") hits WHERE hits.tid IS NOT NULL GROUP BY hits.tid"
        f") g {where} ORDER BY g.at DESC, g.tid DESC LIMIT %s"
    )
    return sql, [*message_params, *ticket_params, *where_params, limit]


@dataclass
class SearchHit:
    """A message found, cut to a snippet around its first match; `highlights` are the
    (start, end) offsets of the matches in the snippet."""

    message: Message
    snippet: str
    highlights: list[tuple[int, int]]


@dataclass
class SearchResult:
    ticket: Ticket
    at: int
    match_count: int
    contact_highlights: list[tuple[int, int]]
    psid_highlights: list[tuple[int, int]]
    messages: list[SearchHit] = field(default_factory=list)


@dataclass(frozen=True)
class SearchPage:
    items: list[SearchResult]
    more: bool


def search(
    *, user: Agent, query: str, after: SearchPosition | None = None, limit: int
) -> SearchPage:
    """The tickets the agent may see that match `query` (see the module), newest match
    first, with the newest SNIPPETS_PER_TICKET matching messages of each. An empty query
    finds nothing (no query); InvalidInput for one too short or too long. Three queries
    and the visibility's, however many messages match."""
    if not query.strip():
        return SearchPage(items=[], more=False)
    terms = search_terms(query)
    visible = visible_page_ids(user)
    if visible is not None and not visible:
        return SearchPage(items=[], more=False)
    sql, params = search_groups_sql(terms=terms, visible=visible, after=after, limit=limit + 1)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        groups = [(int(tid), int(at), int(hits or 0)) for tid, at, hits in cursor.fetchall()]
    more = len(groups) > limit
    groups = groups[:limit]
    if not groups:
        return SearchPage(items=[], more=False)
    tickets = Ticket.objects.select_related(
        "conversation__contact", "conversation__page", "assignee"
    ).in_bulk([tid for tid, _, _ in groups])
    results = {
        tid: SearchResult(
            ticket=tickets[tid],
            at=at,
            match_count=hits,
            contact_highlights=highlights(
                tickets[tid].conversation.contact.display_name, terms, words=False
            ),
            psid_highlights=highlights(tickets[tid].conversation.contact.psid, terms, words=False),
        )
        for tid, at, hits in groups
    }
    with_messages = [tid for tid, _, hits in groups if hits]
    if with_messages:
        conversations = {tickets[tid].conversation_id for tid in with_messages}
        found = (
            _searched_messages(terms)
            .filter(Q(tid__in=with_messages), conversation_id__in=conversations)
            .annotate(
                rank=Window(
                    RowNumber(), partition_by=[F("tid")], order_by=[F("timestamp").desc(), "-pk"]
                )
            )
            .filter(rank__lte=SNIPPETS_PER_TICKET)
            .select_related("author")
            .order_by("-timestamp", "-pk")
        )
        words = _full_text()
        for message in found:
            snippet = snippet_of(message.text, terms, words=words)
            results[message.tid].messages.append(  # type: ignore[attr-defined]
                SearchHit(
                    message=message,
                    snippet=snippet,
                    highlights=highlights(snippet, terms, words=words),
                )
            )
    return SearchPage(items=[results[tid] for tid, _, _ in groups], more=more)


def _patterns(terms: list[str], *, words: bool) -> list[re.Pattern[str]]:
    """How each word is found in a text: anywhere (SQLite's LIKE, contacts), or as
    PostgreSQL's full-text search finds it: a whole word, the last one as a prefix."""
    if not words:
        return [re.compile(re.escape(term), re.IGNORECASE) for term in terms]
    start, end = r"(?<![^\W_])", r"(?![^\W_])"
    return [
        re.compile(start + re.escape(term) + ("" if i == len(terms) - 1 else end), re.IGNORECASE)
        for i, term in enumerate(terms)
    ]


def highlights(text: str, terms: list[str], *, words: bool) -> list[tuple[int, int]]:
    """The (start, end) offsets in `text` of what the words match, in order, overlapping
    ones merged. The inbox marks them (with text nodes and <mark>, never as HTML)."""
    spans = sorted(
        (m.start(), m.end())
        for pattern in _patterns(terms, words=words)
        for m in pattern.finditer(text)
        if m.end() > m.start()
    )
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def snippet_of(text: str, terms: list[str], *, words: bool) -> str:
    """The text, or for a long one SNIPPET_CHARS of it around its first match, with "…"
    where it was cut."""
    text = " ".join(text.split())  # one line: a snippet is read at a glance
    if len(text) <= SNIPPET_CHARS:
        return text
    found = highlights(text, terms, words=words)
    start = max(0, found[0][0] - SNIPPET_BEFORE) if found else 0
    if start:
        space = text.find(" ", start)
        if 0 <= space < (found[0][0] if found else start + 20):
            start = space + 1
    end = min(len(text), start + SNIPPET_CHARS)
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")
