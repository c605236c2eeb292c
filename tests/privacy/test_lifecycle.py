"""A visitor's whole life in opt-in mode, as a hypothesis state machine, through both adapters.

visit -> consent -> events -> GPC on/off -> opt-out -> erasure -> export, in any
order. After every step: no rows without consent, none left after withdrawal,
and the rows of the current identity are exactly what the model expects; an
export equals the stored rows of the current identity.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.harness import Client, all_rows, host_client, make_penchant

P = "/personalization"


def machine_for(kind: str) -> type[RuleBasedStateMachine]:
    class Lifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.tmp = tempfile.TemporaryDirectory()
            self.url = f"sqlite:///{Path(self.tmp.name) / 'life.db'}"
            # any number of erasures and exports a minute: the limit has its own test
            self.penchant = make_penchant(self.url, consent="opt-in", privacy_rate_limit=0)
            self.site: Client = host_client(kind, self.penchant)
            self.consented = False
            self.gpc = False
            self.expected = 0  # rows of the current identity
            self.ever_consented = False

        def teardown(self) -> None:
            self.site.close()
            self.penchant.close(timeout=5.0)
            self.tmp.cleanup()

        @property
        def tracked(self) -> bool:
            return self.consented and not self.gpc

        def _headers(self) -> dict[str, str]:
            headers = {"Origin": self.site.origin, "Accept": "application/json"}
            if self.gpc:
                headers["Sec-GPC"] = "1"
            return headers

        @rule(target_id=st.integers(1, 7))
        def visit(self, target_id: int) -> None:
            assert self.site.get(f"/procedures/{target_id}", headers=self._headers()).status == 200
            self.expected += self.tracked

        @rule()
        def consent(self) -> None:
            reply = self.site.post(f"{P}/opt-in", headers=self._headers())
            assert reply.status == 200
            self.consented = True
            self.ever_consented = True

        @rule(n=st.integers(1, 3))
        def events(self, n: int) -> None:
            headers = self._headers()
            token = self.site.token(headers=headers)  # the page itself is a view
            self.expected += self.tracked
            events = [
                {
                    "interaction_type": "click",
                    "target_type": "procedure",
                    "target_id": i + 1,
                    "event_id": uuid.uuid4().hex,
                }
                for i in range(n)
            ]
            assert self.site.beacon(*events, token=token, headers=headers).status == 202
            self.expected += n * self.tracked

        @rule()
        def gpc_on(self) -> None:
            self.gpc = True

        @rule()
        def gpc_off(self) -> None:
            self.gpc = False

        @rule()
        def opt_out(self) -> None:
            reply = self.site.post(f"{P}/opt-out", headers=self._headers())
            assert reply.status == 200
            self.consented = False
            self.expected = 0

        @rule()
        def erase(self) -> None:
            assert self.site.delete(f"{P}/my-data", headers=self._headers()).status == 200
            self.expected = 0

        @rule()
        def export(self) -> None:
            reply = self.site.get(f"{P}/my-data", headers=self._headers())
            if not self.consented:
                assert reply.status == 404
                return
            assert reply.status == 200
            exported = {e["event_id"] for e in reply.json()["interactions"]}
            stored = {r["event_id"] for r in all_rows(self.url)}
            assert exported == stored

        @invariant()
        def rows_match_the_model(self) -> None:
            assert self.penchant.flush(timeout=5.0)
            stored = all_rows(self.url)
            if not self.ever_consented or not self.consented:
                # Nothing without consent, nothing left after withdrawal.
                assert stored == []
            assert len(stored) == self.expected
            assert len({r["user_id"] for r in stored}) <= 1

    Lifecycle.__name__ = f"Lifecycle_{kind}"
    return Lifecycle


@pytest.mark.parametrize("kind", ["starlette", "wsgi"])
def test_lifecycle(kind: str) -> None:
    options: Any = settings(
        max_examples=12,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    run_state_machine_as_test(machine_for(kind), settings=options)
