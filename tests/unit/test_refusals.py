"""The one place that turns a token's state into the error its client sees."""
from __future__ import annotations

from app.http.downloads import content_disposition
from app.queue.replies import Snapshot
from app.queue.states import CLIENT_STATE_OF, ClientState, Reply, TokenState, client_state
from app.services.refusals import DRAINING_RETRY_AFTER, not_admitted, refusal, retry_after


def test_each_refused_state_has_its_error():
    line = Snapshot(now=0, waiting=9, active=1, capacity=1, rate=0.5, version=1)
    codes = {
        TokenState.SPENT: ("token_spent", 410), TokenState.REMOVED: ("token_removed", 410),
        TokenState.EXPIRED: ("token_expired", 410), TokenState.DRAINING: ("queue_draining", 503),
        TokenState.FULL: ("queue_full", 503), Reply.TOO_MANY: ("too_many_connections", 429),
    }
    for state, (code, status) in codes.items():
        error = refusal(state, line)
        assert (error.code, error.status) == (code, status), state
    assert refusal(TokenState.FULL, line).extra["retry_after"] == retry_after(line) == 2
    assert refusal(TokenState.DRAINING).extra["retry_after"] == DRAINING_RETRY_AFTER
    waiting = refusal(TokenState.WAITING, position=3)
    assert (waiting.code, waiting.extra["position"]) == ("not_your_turn", 3)
    for allowed in (TokenState.ADMITTED, TokenState.DOWNLOADING, TokenState.PAUSED, TokenState.NONE):
        assert refusal(allowed) is None
    assert not_admitted().status == 409


def test_every_queue_state_a_client_may_see_has_its_client_word():
    assert set(CLIENT_STATE_OF.values()) == set(ClientState)
    assert client_state(TokenState.PAUSED) == ClientState.DOWNLOADING
    assert client_state(TokenState.FULL) == ClientState.NOT_QUEUED


def test_content_disposition_has_an_ascii_fallback_and_the_utf8_name():
    assert content_disposition("a.bin") == 'attachment; filename="a.bin"'
    value = content_disposition('Résumé "x".tar')
    assert value.startswith('attachment; filename="Resume x.tar"; filename*=UTF-8\'\'R%C3%A9sum%C3%A9')
    assert content_disposition("—") == "attachment; filename=\"download\"; filename*=UTF-8''%E2%80%94"
