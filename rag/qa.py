"""The question-answering service: one object that owns the loaded index and answers questions.

``ForumQA.open(settings)`` loads (building when missing or stale) the index and warms the models;
``answer`` and ``search`` are safe to call from many threads; ``reload`` swaps in a newer build
atomically, so requests in flight finish on the index they started with.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import replace
from typing import Literal

import numpy as np

from rag.answer.compose import compose, overview, passages, question_parts
from rag.answer.followup import standalone_question
from rag.answer.question import Kind, kind_of, named_documents, question_form
from rag.answer.reader import (
    ReaderModel,
    ReaderState,
    Reading,
    continuation,
    following,
    load_reader,
    multilingual_confidence,
    read,
    runs_on_to,
    unknown_numbers,
)
from rag.answer.retrieval import Hit, Retriever
from rag.answer.short_answer import TYPED, ShortAnswerFinder
from rag.answer.short_answer import load_model as load_short_answer_model
from rag.answer.yes_no import Settled, settle
from rag.config import Settings
from rag.generate.generation import Event, Final, Token, generate_events
from rag.generate.grounding import Checker, Scorer
from rag.generate.grounding import shipped_model as grounding_model
from rag.generate.llm import LLMClient, LLMConfig
from rag.hashing import content_id
from rag.index.build import Until
from rag.index.embedders import EMBEDDERS, Embedder, configure_threads, get_embedder
from rag.index.search_index import SearchIndex
from rag.store import Store, open_store
from rag.text import fold_name, is_latin
from rag.types import Answer, Citation, Document, QuestionKind, Turn, Verdict

log = logging.getLogger(__name__)

__all__ = [
    "Access", "Event", "Final", "ForumQA", "Mode", "Token", "documents_filter", "llm_client", "valid_text",
]

Mode = Literal["extractive", "generative", "auto"]

NOT_COVERED = "The report does not say. The nearest passages are listed below, but none of them answers this."
NOT_COVERED_MANY = (
    "The documents do not say. The nearest passages are listed below, but none of them answers this."
)
UNCERTAIN = "This may not answer the question exactly; the nearest the documents come:"
# A yes/no question about an outcome (approved? signed? finished?) whose nearest sentences record none.
UNSETTLED = "The documents do not settle this: they record no outcome. The nearest they come:"
# Whether the documents cover a question in another script (Korean, Russian...) is read off its
# cross-lingual confidence (multilingual_confidence): under this, nothing they hold is near it.
MULTILINGUAL_NOT_COVERED = 0.2
# A question in another script while the multilingual models' stages (e5, USE) are still building: the
# English model cannot read it, and saying "not covered" could be false. So it gets the passages that
# share its words (BM25, with Cyrillic names transliterated), labelled as such, until they are built.
MULTILINGUAL_PENDING = (
    "The index is still adding its multilingual models ({models}), so questions in this language cannot "
    "be read yet. Until then, these are the passages that share words with the question:"
)
# A document just added whose slower models (e5, USE) are still embedding it: answers that may concern it
# say so. Questions in other scripts cannot read it yet (only its words are searched).
STILL_ADDING = "{titles} {are} still being added ({models}): {how}"
STILL_ADDING_LATIN = "its passages are found with MiniLM and keyword search until then."
STILL_ADDING_OTHER = (
    "questions in this language cannot read {it} yet, so the answer may lie there; ask again in a moment."
)
NOT_COVERED_READABLE = (
    "The documents that questions in this language can read so far do not say. The nearest passages are "
    "listed below."
)
MULTILINGUAL_PENDING_NONE = (
    "The index is still adding its multilingual models ({models}), so questions in this language cannot "
    "be read yet. Ask again in a moment."
)


def valid_text(text: str, field: str = "the question", *, allow_empty: bool = False) -> str:
    """``text`` unchanged, or a :class:`ValueError` naming ``field``: blank (unless ``allow_empty``), or
    holding a lone surrogate, which JSON (``"\\ud800"``) and a command line of bad bytes can carry but
    no tokenizer or UTF-8 encoder accepts. The one check of input text, for ForumQA, the API and the CLI.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{field} is not valid Unicode: a lone surrogate at character {exc.start}") from None
    if not allow_empty and not text.strip():
        raise ValueError(f"{field} must not be empty")
    return text


def llm_client(settings: Settings) -> LLMClient | None:
    """The client of the configured LLM server, or None when there is none."""
    if not settings.llm_configured:
        return None
    assert settings.llm_base_url and settings.llm_model
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    config = LLMConfig(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=key,
        timeout=settings.llm_timeout,
        connect_timeout=settings.llm_connect_timeout,
        max_concurrent=settings.llm_max_concurrent,
        queue_timeout=settings.llm_queue_timeout,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
    )
    client = LLMClient(config)
    log.info("generative answers: model %r at %s", config.model, client.where)
    return client


#: What the asker may read, given the index a request is answered from: the ids of its documents they may
#: read (sorted), or None for all of them (rag/accounts: ``Principal.readable_ids``).
Access = Callable[[Mapping[str, Document], str], "tuple[str, ...] | None"]


def documents_filter(
    documents: Mapping[str, Document], doc_ids: Sequence[str] | None, readable: tuple[str, ...] | None = None
) -> tuple[str, ...] | None:
    """``doc_ids`` sorted and deduplicated (None: every document), or a :class:`ValueError` naming the
    ids ``documents`` has no document for, or saying the list is empty. The one check of doc ids, for
    ForumQA and the API (:meth:`ForumQA.documents_filter`). ``readable``: the only ids the asker may
    read (None: all); others are unknown to them, and without ``doc_ids`` they are the filter."""
    if doc_ids is None:
        return readable
    allowed = documents if readable is None else set(readable)
    unknown = [d for d in dict.fromkeys(doc_ids) if d not in allowed]
    if unknown:
        raise ValueError(f"unknown document id(s): {', '.join(map(repr, unknown))}")
    if not doc_ids:
        raise ValueError("doc_ids is empty: name at least one document, or leave it out for all")
    return tuple(sorted(set(doc_ids)))


class _State:
    """An index and the retriever over it; replaced as a whole on reload."""

    def __init__(
        self,
        index: SearchIndex,
        embedders: dict[str, Embedder],
        settings: Settings,
        pool: Executor,
        finder: ShortAnswerFinder,
    ) -> None:
        self.index = index
        self.retriever = Retriever(index, embedders, settings.rrf_k, pool)
        self.reader = ReaderState.of(index, finder)
        self._embedders, self._rrf_k, self._pool = embedders, settings.rrf_k, pool
        if index.pending:
            # The reader's picture of an unrelated sentence is drawn from documents every model covers: a
            # document still being embedded has no vectors yet for some models (zero rows).
            complete = np.array([sid for sid in self.reader.sample_ids.tolist()
                                 if not index.pending.get(index.sentences[sid].doc_id)], dtype=np.int64)
            if len(complete):
                self.reader = replace(self.reader, sample_ids=complete)
        self._views: dict[tuple[str, ...], _State] = {}

    def without(self, models: tuple[str, ...]) -> _State:
        """This state as if ``models`` were not built yet (for a question whose passages come from a
        document they have not embedded): a view sharing the tables, BM25 and the reader's statistics."""
        view = self._views.get(models)
        if view is None:
            view = object.__new__(_State)
            view.index = self.index.without(models)
            view.retriever = Retriever(view.index, self._embedders, self._rrf_k, self._pool)
            view.reader = replace(self.reader, index=view.index)
            view._embedders, view._rrf_k, view._pool, view._views = (
                self._embedders, self._rrf_k, self._pool, {}
            )
            self._views[models] = view
        return view


class ForumQA:
    """Answers questions about the documents of one index."""

    def __init__(
        self,
        settings: Settings,
        index: SearchIndex,
        reader: ReaderModel | None = None,
        store: Store | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or open_store(settings)  # where the index comes from, and newer ones
        self.reader = reader or load_reader()
        self.embedders = {name: self._embedder(name) for name in index.embedder_names}
        # One thread that encodes a question with a second model while the caller's thread runs the first.
        self._encoding = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forumqa-encode")
        self.short_answers = ShortAnswerFinder(load_short_answer_model())
        self._state = _State(index, self.embedders, settings, self._encoding, self.short_answers)
        self._reload_lock = threading.Lock()
        self._cache: OrderedDict[
            tuple[str, tuple[tuple[str, str], ...], int, str, tuple[str, ...] | None], Answer
        ] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.llm = llm_client(settings)
        # Built once, on the embedders this object holds (the same instances, thread settings included):
        # the check loads no model of its own. Loaded at start-up so a damaged model stops it here.
        self.grounding = Checker(grounding_model(), Scorer(self._embedder)) if self.llm is not None else None

    def _embedder(self, name: str) -> Embedder:
        return get_embedder(name, self.settings.threads, self.settings.query_encoder)

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        progress: bool = True,
        until: Until = "all",
        store: Store | None = None,
    ) -> ForumQA:
        """Load the index from the store the settings name (the file store building it first when missing
        or stale) and warm the models up.

        ``until="answerable"``: serve as soon as the index answers (see :meth:`rag.store.Store.load`).
        """
        settings = settings or Settings()
        configure_threads(settings.threads)
        store = store or open_store(settings)
        qa = cls(settings, store.load(progress=progress, until=until), store=store)
        qa.warm_up()
        return qa

    @property
    def index(self) -> SearchIndex:
        return self._state.index

    @property
    def documents(self) -> list[Document]:
        return list(self._state.index.documents.values())

    def document(self, doc_id: str) -> Document | None:
        return self._state.index.documents.get(doc_id)

    def warm_up(self) -> None:
        for embedder in self.embedders.values():
            embedder.encode_queries(["warm up"])

    def reload(self) -> bool:
        """Switch to the store's newest index if it differs from the one serving. True if swapped."""
        with self._reload_lock:
            index = self.store.newer(self._state.index)  # fully loaded before the swap
            if index is None:
                return False
            missing = [n for n in index.embedder_names if n not in self.embedders]
            for name in missing:
                self.embedders[name] = self._embedder(name)
            self._state = _State(index, self.embedders, self.settings, self._encoding, self.short_answers)
            with self._cache_lock:
                self._cache.clear()
            log.info("now serving index %s", index.version)
            return True

    def search(self, query: str, top_k: int = 5, doc_ids: Sequence[str] | None = None,
               access: Access | None = None) -> list[Citation]:
        """Ranked passages for ``query`` (no answer composed), only from ``doc_ids`` when given, and only
        from documents ``access`` allows."""
        return self._run(valid_text(query, "the query"), None, top_k, doc_ids, access).citations

    def answer(
        self,
        question: str,
        history: Sequence[Turn] | None = None,
        top_k: int = 5,
        doc_ids: Sequence[str] | None = None,
        mode: Mode = "extractive",
        access: Access | None = None,
        fresh: bool = False,
    ) -> Answer:
        """The cited answer to ``question``, given the earlier turns of the chat.

        ``doc_ids`` restricts the answer to those documents. ``mode`` "generative" has the
        configured LLM write the answer from the cited passages (checked sentence by sentence);
        "auto" does so when an LLM is configured. ``fresh`` answers anew (see :meth:`_fresh`). Raises
        ``ValueError`` for an empty question, text that is not valid Unicode, a document id the
        index does not have, or generative mode without an LLM (:class:`rag.config.LLMNotConfigured`).
        """
        final = None
        for event in self._answer_events(question, history, top_k, doc_ids, mode, access, stream=False,
                                         fresh=fresh):
            if isinstance(event, Final):
                final = event.answer
        assert final is not None  # answer_events always ends with one Final
        return final

    def answer_events(
        self,
        question: str,
        history: Sequence[Turn] | None = None,
        top_k: int = 5,
        doc_ids: Sequence[str] | None = None,
        mode: Mode = "extractive",
        access: Access | None = None,
        fresh: bool = False,
    ) -> Iterator[Event]:
        """Like :meth:`answer`, as events: the LLM's tokens as they come, then the final answer.

        Validation, retrieval and the reader run before the first event, so bad input raises
        before anything is streamed.
        """
        return self._answer_events(question, history, top_k, doc_ids, mode, access, stream=True, fresh=fresh)

    def _answer_events(
        self,
        question: str,
        history: Sequence[Turn] | None,
        top_k: int,
        doc_ids: Sequence[str] | None,
        mode: Mode,
        access: Access | None,
        stream: bool,
        fresh: bool = False,
    ) -> Iterator[Event]:
        turns = [
            Turn(t.role, valid_text(t.content, f"history turn {i + 1}", allow_empty=True))
            for i, t in enumerate(history or ())
        ]
        question = valid_text(question)
        client = self._client_for(mode)
        started = time.perf_counter()
        extractive = self._run(question, turns, top_k, doc_ids, access, fresh)
        return self._events(extractive, question, turns, client, started, stream, self._fresh(fresh))

    def _events(
        self,
        extractive: Answer,
        question: str,
        turns: list[Turn],
        client: LLMClient | None,
        started: float,
        stream: bool,
        temperature: float | None = None,
    ) -> Iterator[Event]:
        if client is None:
            yield Final(extractive)
            return
        assert self.grounding is not None  # a client is only handed out when an LLM is configured
        events = generate_events(extractive, question, turns, client, self.grounding, stream, temperature)
        for event in events:
            if isinstance(event, Final):
                final = event.answer
                # The extractive id already names the build, question and history; a written answer's id
                # adds its own text (the same text, as when the LLM failed, keeps the same id).
                same = final.answer == extractive.answer
                answer_id = extractive.answer_id if same else content_id(extractive.answer_id, final.answer)
                # An LLM was asked (or tried) again: not a cached answer, whatever the reader's was.
                took = (time.perf_counter() - started) * 1000
                event = Final(replace(final, took_ms=took, cached=False, answer_id=answer_id))
            yield event

    def _fresh(self, fresh: bool) -> float | None:
        """Regenerate (``fresh``): the answer cache is skipped (:meth:`_run`), and an LLM writes at
        ``llm_regenerate_temperature`` when that is above its usual temperature, so that asking again
        may word the answer differently. None: the LLM's usual temperature."""
        if not fresh or self.settings.llm_regenerate_temperature <= self.settings.llm_temperature:
            return None
        return self.settings.llm_regenerate_temperature

    def _client_for(self, mode: Mode) -> LLMClient | None:
        self.settings.check_mode(mode)  # self.llm is None exactly when the settings configure no LLM
        return None if mode == "extractive" else self.llm

    def documents_filter(
        self, doc_ids: Sequence[str] | None, access: Access | None = None
    ) -> tuple[str, ...] | None:
        """:func:`documents_filter` against the serving index's documents (those ``access`` allows)."""
        index = self._state.index
        readable = access(index.documents, index.version) if access is not None else None
        return documents_filter(index.documents, doc_ids, readable)

    def _overview(
        self,
        index: SearchIndex,
        question: str,
        documents: list[Document],
        pool: list[Hit],
        top_k: int,
        started: float,
    ) -> Answer | None:
        """The leads of the documents an overview question is about: those it names, else those of the
        best passages (one document: that one). None when there is no lead to quote."""
        named = named_documents(question, [d.title for d in documents])
        if named:
            doc_ids = [documents[i].id for i in named]
        else:
            doc_ids = list(dict.fromkeys(index.chunks[h.chunk_id].doc_id for h in pool))
        if not doc_ids:
            return None
        text, citations = overview(index, doc_ids, top_k)
        if not citations:
            return None
        took = (time.perf_counter() - started) * 1000
        confidence = self.reader.overview_confidence
        return Answer(question, text, True, confidence, citations, took, verdict="answered", kind="overview")

    def _read(
        self,
        state: _State,
        question: str,
        query: str,
        vectors: dict[str, np.ndarray],
        pool: list[Hit],
        top_k: int,
        kind: Kind,
        n_documents: int,
        started: float,
    ) -> Answer:
        """The reader's answer and its verdict: answered, uncertain (the nearest sentences, labelled), or
        not covered (what is asked is absent from the documents)."""
        own_vectors = state.retriever.query_vectors(question) if query != question else None
        reading = read(self.reader, state.reader, query, vectors, pool, own_vectors)
        citations: list[Citation] = []
        text = ""
        verdict: Verdict = "not_covered"
        confidence = 0.0
        settled: Settled | None = None
        if reading is not None:
            if is_latin(question):
                confidence = reading.confidence
                covered = reading.coverage >= self.reader.cover_threshold
            else:
                confidence = multilingual_confidence(state.reader, query, reading)
                covered = confidence >= MULTILINGUAL_NOT_COVERED
            # A number asked about that no document holds ("in 2005") is evidence of absence itself.
            covered = covered and unknown_numbers(state.reader, question) == 0
            if covered:
                verdict = "answered" if confidence >= self.settings.answer_threshold else "uncertain"
            readings = [(question, reading)]
            parts = question_parts(question)
            # A two-part question: the best sentence for each part (the whole question's best sentence
            # answers one of them at most), after the whole question's.
            for part in parts if len(parts) > 1 else ():
                part_vectors = state.retriever.query_vectors(part)
                part_reading = read(self.reader, state.reader, part, part_vectors, pool)
                if part_reading is not None:
                    readings.append((part, part_reading))
            through = None
            top = reading.sentence_ids[0]
            if kind is Kind.YES_NO:
                if verdict == "answered":
                    settled, through = self._settle(state.index, question, reading)
                    if settled is Settled.UNSETTLED:
                        verdict = "uncertain"
                if through is None:
                    through = continuation(state.index, top)
            else:
                form = question_form(question)
                through = runs_on_to(state.reader, form, top)
                answered_typed = any(
                    state.reader.offers(form, s) for s in range(top, (through or top) + 1)
                )
                if form.type in TYPED and not answered_typed and verdict == "answered":
                    verdict = "uncertain"  # a who/when/where/how-many question answered by no such span
            # A short answer is marked only where the documents answer.
            finder = self.short_answers if verdict == "answered" else None
            text, citations = compose(
                state.index, pool, readings, top_k, self.reader.second_ratio, finder, through
            )
            if verdict == "answered" and settled in (Settled.YES, Settled.NO):
                text = f"{settled.value}. {text}"
        if not citations:
            verdict = "not_covered"
        if verdict == "not_covered":
            text = NOT_COVERED if n_documents == 1 else NOT_COVERED_MANY
        elif settled is Settled.UNSETTLED:
            text = f"{UNSETTLED} {text}"
        elif verdict == "uncertain":
            text = f"{UNCERTAIN} {text}"
        log.debug("q=%r verdict=%s confidence=%.3f", question, verdict, confidence)
        took = (time.perf_counter() - started) * 1000
        answer_kind: QuestionKind = "yes_no" if kind is Kind.YES_NO else "fact"
        return Answer(
            question,
            text,
            verdict != "not_covered",
            confidence,
            citations,
            took,
            verdict=verdict,
            kind=answer_kind,
        )

    @staticmethod
    def _settle(index: SearchIndex, question: str, reading: Reading) -> tuple[Settled | None, int | None]:
        """Whether the best sentence, or one of the two after it in its paragraph, settles the yes/no
        ``question``; and the sentence that does, when it is a later one (its quote runs on to it)."""
        top = reading.sentence_ids[0]
        ids = [top, *following(index, top, 2)]
        subject = frozenset(
            fold_name(w) for doc in index.documents.values() for w in re.findall(r"[\w'’-]+", doc.title)
        )
        settled, at = settle(
            question, reading.question_idf, [index.sentences[s].text for s in ids], subject
        )
        through = ids[at] if settled in (Settled.YES, Settled.NO) and at > 0 else None
        return settled, through

    def _multilingual_pending(self, index: SearchIndex, query: str) -> list[str]:
        """The multilingual models still to be built, when ``query`` is in another script and the
        serving index has none of them yet (empty otherwise)."""
        if is_latin(query):
            return []
        if any(EMBEDDERS[n].multilingual for n in index.embedder_names):
            return []
        return [n for n in self.settings.embedders if n in EMBEDDERS and EMBEDDERS[n].multilingual]

    def _lexical_only(
        self,
        state: _State,
        question: str,
        query: str,
        pending: list[str],
        top_k: int,
        only: tuple[str, ...] | None,
        started: float,
    ) -> Answer:
        hits = state.retriever.retrieve(query, top_k, {}, only)
        citations = passages(state.index, hits, top_k)
        template = MULTILINGUAL_PENDING if citations else MULTILINGUAL_PENDING_NONE
        took = (time.perf_counter() - started) * 1000
        text = template.format(models=", ".join(pending))
        return Answer(question, text, True, 0.0, citations, took, verdict="uncertain", kind="fact")

    def _staging(
        self,
        state: _State,
        question: str,
        vectors: dict[str, np.ndarray],
        pool: list[Hit],
        only: tuple[str, ...] | None,
    ) -> tuple[_State, list[Hit], str | None]:
        """What to read for a question while some document lacks a model it uses (just added, its slower
        models still embedding): the state and passages to read, and the notice to give (None: nothing of
        the kind). In Latin script the whole pool is read without the missing models when a passage of such
        a document is in it; in another script such passages are left out (the multilingual models cannot
        read them yet) and the answer says so."""
        if not state.index.pending:
            return state, pool, None
        used = tuple(vectors)
        candidates = [d for d in state.index.pending if only is None or d in only]
        lacking = state.index.lacking(candidates, used)
        if not lacking:
            return state, pool, None
        pooled = {state.index.chunks[h.chunk_id].doc_id for h in pool}
        models = state.index.pending_models()
        missing = tuple(m for m in models if any(m in ms for ms in lacking.values()))
        if is_latin(question):
            concerned = [d for d in lacking if d in pooled]
            if not concerned:
                return state, pool, None
            how = STILL_ADDING_LATIN
            state = state.without(missing)
        else:
            concerned = list(lacking)
            kept = [h for h in pool if state.index.chunks[h.chunk_id].doc_id not in lacking]
            pool = kept or pool  # nothing else to read: its keyword matches are all there is
            how = STILL_ADDING_OTHER.format(it="it" if len(concerned) == 1 else "them")
        titles = ", ".join(f"“{state.index.documents[d].title}”" for d in concerned)
        are = "is" if len(concerned) == 1 else "are"
        return state, pool, STILL_ADDING.format(titles=titles, are=are, models=", ".join(missing), how=how)

    def _run(
        self,
        question: str,
        history: Sequence[Turn] | None,
        top_k: int,
        doc_ids: Sequence[str] | None = None,
        access: Access | None = None,
        fresh: bool = False,
    ) -> Answer:
        started = time.perf_counter()
        state = self._state  # one consistent index for the whole request, even across a reload
        # What the asker may read, against this very index: the filter, and so the cache key and answer id.
        readable = access(state.index.documents, state.index.version) if access is not None else None
        only = documents_filter(state.index.documents, doc_ids, readable)
        if only == ():  # the asker may read none of the documents served
            took = (time.perf_counter() - started) * 1000
            return Answer(question, NOT_COVERED_MANY, False, 0.0, [], took, verdict="not_covered")
        history_key = tuple((t.role, t.content) for t in history or ())
        key = (question, history_key, top_k, state.index.version, only)
        with self._cache_lock:
            cached = None if fresh else self._cache.get(key)  # fresh: answered anew, then cached
            if cached is not None:
                self._cache.move_to_end(key)
        if cached is not None:
            return replace(cached, took_ms=(time.perf_counter() - started) * 1000, cached=True)

        query = standalone_question(question, history)
        pending = self._multilingual_pending(state.index, query)
        if pending:  # not cached: the build id changes when the models are in, but say so plainly
            return self._lexical_only(state, question, query, pending, top_k, only, started)
        vectors = state.retriever.query_vectors(query)
        hits = state.retriever.retrieve(query, max(top_k, self.settings.candidates), vectors, only)
        # A few chunks more than asked for: overlapping windows often share their best sentence,
        # and compose() keeps one citation per supporting sentence.
        pool = hits[: top_k + 5]
        state, pool, adding = self._staging(state, question, vectors, pool, only)
        for model in list(vectors):
            if model not in state.index.chunk_vectors:
                del vectors[model]
        documents = [d for d in state.index.documents.values() if only is None or d.id in only]
        titles = [d.title for d in documents]
        kind = kind_of(question, titles) if is_latin(question) else Kind.FACT
        answer: Answer | None = None
        if kind is Kind.OVERVIEW:
            answer = self._overview(state.index, question, documents, pool, top_k, started)
        if answer is None:
            answer = self._read(state, question, query, vectors, pool, top_k, kind, len(documents), started)
        if adding is not None:
            if answer.verdict == "not_covered" and not is_latin(question):
                # The document still being added was not read: "not covered" could be false.
                answer = replace(answer, verdict="uncertain", answerable=True, answer=NOT_COVERED_READABLE)
            answer.notice = adding
        # Made from content, not a counter: a cached repeat, another worker, a restart give the same id.
        answer.answer_id = content_id(state.index.version, question, history_key, top_k, only, answer.answer)
        if self.settings.cache_size:
            with self._cache_lock:
                self._cache[key] = answer
                while len(self._cache) > self.settings.cache_size:
                    self._cache.popitem(last=False)
        return answer
