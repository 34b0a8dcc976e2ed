"""Database: a connection to attnkvd, on top of redis-py.

Each method sends one command (update() sends a pipeline) and turns the
reply into Python values: words as str, scores and weights as float, and
error replies into the exceptions of attnkv.errors.

Ownership: a Database that made its own redis.Redis (the usual case) owns
it and its connection pool, and close() disconnects them; one given an
existing client (client=...) only borrows it, and close() leaves it open.

Threading: a Database holds no state of its own besides that client, and a
redis.Redis may be shared between threads (each command takes a connection
from the pool), so one Database may be too. close() must not race with
calls in other threads.
"""

from __future__ import annotations

from typing import (Any, Iterable, Iterator, List, Literal, Mapping, NamedTuple, Optional,
                    Sequence, Tuple, Union, overload)

import redis
import redis.exceptions

from .errors import from_reply

__all__ = ["Database", "Explained", "Hit", "Pairs"]

Pairs = Union[Mapping[str, str], Iterable[Tuple[str, str]]]
Attention = Literal["dot", "cosine"]
Metric = Literal["l2", "cosine", "dot"]

# How many SETs update() puts in one pipeline: enough to hide the round
# trips, few enough that neither side buffers much.
_BATCH = 1000


class Hit(NamedTuple):
    """A word of a QUERY or NEIGHBORS answer with its score: a distance
    for the l2 metric (smaller is nearer), a similarity for cosine and dot
    (larger is nearer)."""

    word: str
    score: float


class Explained(NamedTuple):
    """A stored entry and its attention weight for an EXPLAINed text."""

    key: str
    value: str
    weight: float


class Valued(NamedTuple):
    """A stored value and the attention weight its entries receive (FGET)."""

    value: str
    weight: float


def _text(x: Union[str, bytes]) -> str:
    # Replies are str with decode_responses=True (our default), bytes with a
    # borrowed client that does not decode. A payload may be any bytes:
    # those that are not UTF-8 become surrogate escapes, as our own client
    # decodes them (encoding_errors below), so that nothing is lost.
    return x.decode("utf-8", errors="surrogateescape") if isinstance(x, bytes) else x


class Database:
    """attnkvd at host:port, holding word/phrase key-value pairs.

    Database(pairs) connects and stores pairs (a dict, or an iterable of
    (key, value) pairs) in addition to whatever the daemon holds already.
    password is sent with AUTH when the daemon has requirepass set; db
    must be 0 (attnkvd has one keyspace). Other keyword arguments go to
    redis.Redis (socket_timeout=..., ...). client=redis.Redis(...) uses
    that client instead of making one; the connection arguments must then
    be left out.

    Use it as a context manager, or call close(), to disconnect.
    """

    def __init__(self, pairs: Optional[Pairs] = None, host: str = "127.0.0.1",
                 port: int = 6479, db: int = 0, password: Optional[str] = None, *,
                 client: Optional[redis.Redis] = None, **redis_kwargs: Any) -> None:
        self._closed = False
        if client is not None:
            if (host, port, db, password) != ("127.0.0.1", 6479, 0, None) or redis_kwargs:
                raise TypeError("Database: pass either client= or connection arguments, "
                                "not both")
            self._redis = client
            self._owned = False
        else:
            redis_kwargs.setdefault("decode_responses", True)
            # Payload values (SET ... PAYLOAD) may be any bytes: those that
            # are not UTF-8 come back as surrogate escapes (lossless: str
            # .encode("utf-8", "surrogateescape") gives the bytes back, and
            # such a str is sent as those bytes), not as UnicodeDecodeError.
            redis_kwargs.setdefault("encoding_errors", "surrogateescape")
            self._redis = redis.Redis(host=host, port=port, db=db, password=password,
                                      **redis_kwargs)
            self._owned = True
        if pairs is not None:
            try:
                self.update(pairs)
            except BaseException:
                self.close()
                raise

    # -- connection ---------------------------------------------------------

    @property
    def client(self) -> redis.Redis:
        """The redis.Redis this Database talks through, for other commands
        (INFO, CONFIG, ...)."""
        self._check_open()
        return self._redis

    def close(self) -> None:
        """Disconnects (only if this Database made its client). Calls made
        afterwards raise redis.exceptions.ConnectionError. Closing twice is
        harmless."""
        if self._closed:
            return
        self._closed = True
        if self._owned:
            self._redis.close()
            self._redis.connection_pool.disconnect()

    def __enter__(self) -> Database:
        self._check_open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        kw = self._redis.connection_pool.connection_kwargs
        where = "%s:%s" % (kw.get("host", "?"), kw.get("port", "?"))
        return "<attnkv.Database %s%s>" % (where, " closed" if self._closed else "")

    def _check_open(self) -> None:
        if self._closed:
            raise redis.exceptions.ConnectionError("this attnkv.Database is closed")

    def _call(self, *args: Any) -> Any:
        self._check_open()
        try:
            return self._redis.execute_command(*args)
        except redis.exceptions.ResponseError as e:
            raise from_reply(e, args) from None

    # -- fuzzy lookups ------------------------------------------------------

    @overload
    def query(self, text: str, count: Optional[int] = ..., *,
              withscores: Literal[False] = ..., attention: Optional[Attention] = ...,
              temperature: Optional[float] = ..., metric: Optional[Metric] = ...) -> List[str]:
        ...

    @overload
    def query(self, text: str, count: Optional[int] = ..., *, withscores: Literal[True],
              attention: Optional[Attention] = ..., temperature: Optional[float] = ...,
              metric: Optional[Metric] = ...) -> List[Hit]:
        ...

    @overload
    def query(self, text: str, count: Optional[int] = ..., *, withscores: bool,
              attention: Optional[Attention] = ..., temperature: Optional[float] = ...,
              metric: Optional[Metric] = ...) -> Union[List[str], List[Hit]]:
        ...

    def query(self, text: str, count: Optional[int] = 5, *, withscores: bool = False,
              attention: Optional[Attention] = None, temperature: Optional[float] = None,
              metric: Optional[Metric] = None) -> Union[List[str], List[Hit]]:
        """The count vocabulary words nearest to the attention-weighted
        blend of the stored values, for text (a word or a phrase): QUERY.
        With withscores, (word, score) pairs (Hit). attention ("dot" or
        "cosine"), temperature (for cosine attention) and metric ("l2",
        "cosine" or "dot"), and count if None, default to the daemon's
        configuration. An empty store gives []."""
        args: List[Any] = ["QUERY", text]
        _opt(args, "COUNT", count)
        if withscores:
            args.append("WITHSCORES")
        _opt(args, "ATTENTION", attention)
        _opt(args, "TEMPERATURE", temperature)
        _opt(args, "METRIC", metric)
        return _hits(self._call(*args), withscores)

    def explain(self, text: str, count: Optional[int] = 5, *,
                attention: Optional[Attention] = None,
                temperature: Optional[float] = None) -> List[Explained]:
        """The count stored entries with the largest attention weights for
        text, largest first: EXPLAIN. The options are those of query()."""
        args: List[Any] = ["EXPLAIN", text]
        _opt(args, "COUNT", count)
        _opt(args, "ATTENTION", attention)
        _opt(args, "TEMPERATURE", temperature)
        return [Explained(_text(k), _text(v), float(w))
                for k, v, w in _answer(self._call(*args))]

    def fget(self, text: str, count: Optional[int] = 5, *, withscores: bool = False,
             attention: Optional[Attention] = None, temperature: Optional[float] = None,
             minweight: Optional[float] = None) -> Union[List[str], List[Valued]]:
        """Fuzzy GET: the stored values (payloads or not), each weighing the
        sum of the attention weights of the entries holding it, heaviest
        first: FGET. With withscores, (value, weight) pairs (Valued);
        minweight (0 to 1) leaves out lighter values. Other options as for
        query()."""
        args: List[Any] = ["FGET", text]
        _opt(args, "COUNT", count)
        if withscores:
            args.append("WITHSCORES")
        _opt(args, "ATTENTION", attention)
        _opt(args, "TEMPERATURE", temperature)
        _opt(args, "MINWEIGHT", minweight)
        return _hits(self._call(*args), withscores, Valued)

    @overload
    def neighbors(self, text: str, count: Optional[int] = ..., *,
                  withscores: Literal[False] = ..., metric: Optional[Metric] = ...) -> List[str]:
        ...

    @overload
    def neighbors(self, text: str, count: Optional[int] = ..., *, withscores: Literal[True],
                  metric: Optional[Metric] = ...) -> List[Hit]:
        ...

    @overload
    def neighbors(self, text: str, count: Optional[int] = ..., *, withscores: bool,
                  metric: Optional[Metric] = ...) -> Union[List[str], List[Hit]]:
        ...

    def neighbors(self, text: str, count: Optional[int] = 5, *, withscores: bool = False,
                  metric: Optional[Metric] = None) -> Union[List[str], List[Hit]]:
        """The count vocabulary words nearest to text itself, whatever is
        stored: NEIGHBORS. Options as for query()."""
        args: List[Any] = ["NEIGHBORS", text]
        _opt(args, "COUNT", count)
        if withscores:
            args.append("WITHSCORES")
        _opt(args, "METRIC", metric)
        return _hits(self._call(*args), withscores)

    def analogy(self, a: str, b: str, c: str, count: Optional[int] = 5, *,
                withscores: bool = False, cosmul: bool = False,
                restrict: Optional[int] = None) -> Union[List[str], List[Hit]]:
        """a is to b as c is to which words: ANALOGY (gensim's most_similar
        with positive [b, c] and negative [a]; with cosmul, its
        most_similar_cosmul). The input words are never answered; restrict
        ranks only that many of the most frequent words."""
        args: List[Any] = ["ANALOGY", a, b, c]
        _opt(args, "COUNT", count)
        if withscores:
            args.append("WITHSCORES")
        if cosmul:
            args.append("COSMUL")
        _opt(args, "RESTRICT", restrict)
        return _hits(self._call(*args), withscores)

    def similarity(self, a: str, b: str) -> float:
        """The cosine of the vectors of two words or phrases: SIMILARITY."""
        return float(self._call("SIMILARITY", a, b))

    def doesnt_match(self, *words: str) -> str:
        """The word that fits least with the others (gensim's
        doesnt_match): DOESNTMATCH."""
        return _text(self._call("DOESNTMATCH", *words))

    # -- the keyspace -------------------------------------------------------

    def set(self, key: str, value: Union[str, bytes], *, payload: bool = False) -> None:
        """Stores value under key (replacing any value). Every word of both
        must be in the vocabulary, else UnknownWordError; with payload, the
        value is kept as it is, not embedded (JSON, an id, any text), and
        only the key's words must be known: SET ... PAYLOAD."""
        if payload:
            self._call("SET", key, value, "PAYLOAD")
        else:
            self._call("SET", key, value)

    def get(self, key: str) -> Optional[str]:
        """The value stored under key, or None."""
        v = self._call("GET", key)
        return None if v is None else _text(v)

    def delete(self, *keys: str) -> int:
        """Removes the keys; returns how many existed."""
        return int(self._call("DEL", *keys)) if keys else 0

    def update(self, pairs: Pairs) -> None:
        """Stores every (key, value) of pairs, in pipelines of SETs. The
        pipelines are not transactions: if the daemon refuses some pairs,
        the others are stored all the same, and then the first refusal is
        raised (its command says which pair it was)."""
        self._check_open()
        items: Iterable[Tuple[str, str]] = (
            pairs.items() if isinstance(pairs, Mapping) else pairs)
        first: Optional[Exception] = None
        batch: List[Tuple[str, str]] = []
        for key, value in items:
            batch.append((key, value))
            if len(batch) == _BATCH:
                first = first or self._set_many(batch)
                batch = []
        if batch:
            first = first or self._set_many(batch)
        if first is not None:
            raise first

    def _set_many(self, batch: Sequence[Tuple[str, str]]) -> Optional[Exception]:
        pipe = self._redis.pipeline(transaction=False)
        for key, value in batch:
            pipe.execute_command("SET", key, value)
        try:
            replies = pipe.execute(raise_on_error=False)
        except redis.exceptions.ResponseError as e:
            # Refused before any SET: AUTH or SELECT on connecting.
            raise from_reply(e) from None
        for (key, value), r in zip(batch, replies):
            if isinstance(r, redis.exceptions.ResponseError):
                return from_reply(r, ("SET", key, value))
        return None

    def clear(self) -> None:
        """Removes every key of this Database's database (FLUSHDB): all of
        them, not only those this Database stored."""
        self._call("FLUSHDB")

    def keys(self, match: Optional[str] = None, count: Optional[int] = None) -> Iterator[str]:
        """The keys (those matching the glob pattern match), a few at a
        time with SCAN, count per call. As with Redis's SCAN, a key present
        throughout is seen at least once; one changed meanwhile may be seen
        twice or not at all."""
        self._check_open()
        cursor = 0
        while True:
            args: List[Any] = ["SCAN", cursor]
            _opt(args, "MATCH", match)
            _opt(args, "COUNT", count)
            cursor, keys = self._call(*args)
            for k in keys:
                yield _text(k)
            if int(cursor) == 0:
                return

    def __iter__(self) -> Iterator[str]:
        return self.keys()

    def __bool__(self) -> bool:
        # Always true, as for other connection objects: without this, len()
        # would decide, and a plain `if db:` would ask the daemon.
        return True

    def __len__(self) -> int:
        """The number of keys (DBSIZE)."""
        return int(self._call("DBSIZE"))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and int(self._call("EXISTS", key)) > 0

    def __getitem__(self, key: str) -> str:
        v = self.get(key)
        if v is None:
            raise KeyError(key)
        return v

    def __setitem__(self, key: str, value: str) -> None:
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        if self.delete(key) == 0:
            raise KeyError(key)


def _opt(args: List[Any], name: str, value: Any) -> None:
    if value is not None:
        args += [name, value]


def _answer(reply: Sequence[Any]) -> Sequence[Any]:
    # A daemon set to unknown-words skip ends the reply of a text that had
    # unknown words with ["skipped", [word ...]] ({"skipped": [...]} in
    # RESP3): not part of the answer.
    if reply:
        last = reply[-1]
        if isinstance(last, dict) and len(last) == 1 and _text(next(iter(last))) == "skipped":
            return reply[:-1]
        if (isinstance(last, (list, tuple)) and len(last) == 2
                and isinstance(last[0], (str, bytes)) and _text(last[0]) == "skipped"
                and isinstance(last[1], (list, tuple))):
            return reply[:-1]
    return reply


def _hits(reply: Sequence[Union[str, bytes]], withscores: bool, pair: Any = Hit) -> Any:
    # Words (or FGET's values), with withscores (item, score) pairs of type
    # pair, from a flat RESP2 reply.
    reply = _answer(reply)
    if not withscores:
        return [_text(w) for w in reply]
    return [pair(_text(reply[i]), float(reply[i + 1])) for i in range(0, len(reply), 2)]
