"""The store: conversation threading, live tallies, bounds, and snapshots under a writer."""

from __future__ import annotations

import json
import threading

from llmspy_tui.capture.events import ProcessExit, ProcessInfo, ProcessSeen
from llmspy_tui.pipeline import Pipeline
from llmspy_tui.store import Store
from support.llm_wire import h1_call, sse_parts, through_store

CHAT = "/v1/chat/completions"


def chat_call(messages: list, reply: str, tool_call: dict | None = None, usage=(10, 5), model="gpt-4o-mini",
              status: int = 200) -> list:
    msg = {"role": "assistant", "content": reply}
    if tool_call:
        msg["tool_calls"] = [tool_call]
    body = {"id": "chatcmpl-x", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]}}
    if status >= 400:
        body = {"error": {"message": "nope", "type": "server_error"}}
    return h1_call(CHAT, {"model": model, "messages": messages}, [json.dumps(body).encode()], status=status)


def three_turns(system: str = "Be kind.") -> list:
    sys_msg = [{"role": "system", "content": system}]
    t1 = [*sys_msg, {"role": "user", "content": "Hi"}]
    t2 = [*t1, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Weather?"}]
    call = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}
    # the client echoes tool arguments re-serialised (spaces): still the same call
    echoed = dict(call, function={"name": "weather", "arguments": '{"city": "Oslo"}'})
    t3 = [*t2, {"role": "assistant", "content": None, "tool_calls": [echoed]},
          {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    return [chat_call(t1, "Hello!"), chat_call(t2, "", tool_call=call), chat_call(t3, "It is sunny.")]


def test_three_turns_form_one_conversation_unrelated_calls_do_not():
    turns = three_turns()
    other = chat_call([{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}], "Hello!")
    views, pl = through_store([*turns, other, turns[1]], pids=[1, 1, 1, 1, 2])
    convs = [v.conversation_id for v in views]
    assert convs[0] == convs[1] == convs[2]
    # the same first turn again starts a new conversation; so does the same call from another process
    assert convs[3] != convs[0] and convs[4] not in (convs[0], convs[3])
    snap = pl.store.snapshot()
    c = snap.conversations[convs[0]]
    assert c.exchange_ids == tuple(v.exchange.id for v in views[:3]) and c.title == "Hi"
    assert c.tally.calls == 3 and c.tally.input_tokens == 30 and c.tally.output_tokens == 15


def test_responses_previous_response_id_links():
    def call(prev: str | None, rid: str, text: str) -> list:
        req = {"model": "gpt-4.1-mini", "input": text, **({"previous_response_id": prev} if prev else {})}
        body = {"id": rid, "object": "response", "status": "completed", "model": "gpt-4.1-mini",
                "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]}],
                "usage": {"input_tokens": 3, "output_tokens": 1}}
        return h1_call("/v1/responses", req, [json.dumps(body).encode()])
    views, _ = through_store([call(None, "resp_a", "one"), call("resp_a", "resp_b", "two"),
                              call("resp_b", "resp_c", "three"), call(None, "resp_d", "one")])
    convs = [v.conversation_id for v in views]
    assert convs[0] == convs[1] == convs[2] != convs[3]


def test_tallies_per_process_model_and_total_with_errors_and_unknown_cost():
    calls = [chat_call([{"role": "user", "content": "a"}], "x", usage=(100, 10)),
             chat_call([{"role": "user", "content": "b"}], "y", usage=(200, 20), model="my-local-model"),
             chat_call([{"role": "user", "content": "c"}], "", status=500)]
    views, pl = through_store(calls, pids=[7, 7, 8])
    snap = pl.store.snapshot()
    assert (snap.total.calls, snap.total.errors, snap.total.in_flight) == (3, 1, 0)
    assert (snap.total.input_tokens, snap.total.output_tokens) == (300, 30)
    assert snap.total.cost_unknown == 1  # my-local-model: tokens, but no price
    assert snap.by_model["gpt-4o-mini"].calls == 2 and snap.by_model["my-local-model"].input_tokens == 200
    procs = {p.pid: p for p in snap.processes}
    assert procs[7].tally.calls == 2 and procs[8].tally.errors == 1
    assert snap.total.cost_usd == sum(v.exchange.cost_usd or 0 for v in views)


def test_tallies_update_while_a_response_streams():
    words = [f" w{i}" for i in range(30)]
    chunks = [{"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
               "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]} for w in words]
    conv = h1_call(CHAT, {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "go"}]},
                   sse_parts([(None, c) for c in chunks] + [(None, "[DONE]")]), ctype="text/event-stream")
    from support import wire
    pl = Pipeline(live=True)
    seen = []
    for ch in wire.to_chunks(conv, splits=lambda d, data: list(range(64, len(data), 64))):
        pl.feed([ch])
        s = pl.store.snapshot()
        seen.append((s.total.in_flight, s.total.output_tokens, s.total.cost_usd))
        if s.exchanges:
            view = next(iter(s.exchanges.values()))
            assert view.in_flight == (s.total.in_flight == 1)
    mid = [t for t in seen if t[0] == 1]
    grown = [t[1] for t in mid]
    assert len(set(grown)) > 5 and grown == sorted(grown)  # output tokens grow while in flight
    assert mid[-1][2] > 0
    assert seen[-1][0] == 0  # finished


def test_eviction_keeps_tallies_and_in_flight_calls():
    calls = [chat_call([{"role": "user", "content": f"q{i}"}], "a") for i in range(30)]
    store = Store(max_exchanges=10)
    views, pl = through_store(calls, pipeline=Pipeline(store=store))
    snap = store.snapshot()
    assert len(snap.exchanges) == 10 and snap.evicted == 20
    assert snap.total.calls == 30 and snap.total.input_tokens == 300
    assert list(snap.exchanges) == [v.exchange.id for v in views[-10:]]
    assert len(snap.conversations) == 10
    small = Store(max_body_bytes=2000)
    through_store(calls, pipeline=Pipeline(store=small))
    s2 = small.snapshot()
    assert sum(len(v.exchange.request_body) + len(v.exchange.response_body) for v in s2.exchanges.values()) <= 2000
    assert s2.total.calls == 30


def test_evicting_part_of_a_conversation_keeps_it_listed():
    """Dropping a conversation's oldest calls leaves it (and its process's list) whole; only
    when its last kept call goes does the conversation leave the process."""
    store = Store(max_exchanges=2)
    _, pl = through_store(three_turns(), pipeline=Pipeline(store=store))
    snap = store.snapshot()
    (conv,) = snap.conversations.values()
    assert len(conv.exchange_ids) == 2 and conv.tally.calls == 3
    assert snap.processes[0].conversation_ids == (conv.id,)
    through_store([chat_call([{"role": "user", "content": f"other {i}"}], "b") for i in range(2)],
                  pipeline=pl)
    snap = store.snapshot()
    assert conv.id not in snap.conversations
    assert set(snap.processes[0].conversation_ids) == set(snap.conversations)
    assert snap.total.calls == 5 and snap.evicted == 3


def test_process_names_and_exit():
    calls = [chat_call([{"role": "user", "content": "q"}], "a")]
    pl = Pipeline()
    pl.feed([ProcessSeen(1, ProcessInfo(4242, 1, "agent", "/usr/bin/agent", ("agent", "--key", "x"), 1))])
    views, _ = through_store(calls, pipeline=pl)
    pl.feed([ProcessExit(10**12, 4242)])
    assert (views[0].comm, views[0].exe) == ("agent", "/usr/bin/agent")
    p = pl.store.snapshot().processes[0]
    assert p.exited and p.comm == "agent" and p.tally.calls == 1


def test_snapshots_are_consistent_while_the_writer_runs():
    calls = [chat_call([{"role": "user", "content": f"q{i}"}], "a", usage=(10, 5)) for i in range(200)]
    store = Store(max_exchanges=50)
    errors = []
    done = threading.Event()

    def reader():
        while not done.is_set():
            s = store.snapshot()
            try:
                assert s.total.input_tokens == 10 * (s.total.calls - s.total.in_flight) or s.total.in_flight
                assert sum(p.tally.calls for p in s.processes) == s.total.calls
                assert len(s.exchanges) <= 50
                for c in s.conversations.values():
                    assert all(x in s.exchanges for x in c.exchange_ids)
            except AssertionError as e:
                errors.append(e)
                return

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    through_store(calls, pipeline=Pipeline(store=store))
    done.set()
    for t in threads:
        t.join()
    assert not errors
    assert store.snapshot().total.calls == 200
