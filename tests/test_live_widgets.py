"""`interactive.live` in a live kernel, driven the way Jupyter's frontend drives it: the test reads the widgets
the kernel opens, sets each one's value and clicks 'Run' with comm messages, and reads what lands in the
control's output area. The static book never runs these controls, so this is where their wiring is checked."""
from __future__ import annotations

import functools
import os
import textwrap

import pytest
from jupyter_client import KernelClient, KernelManager

from bnutils import interactive

SETUP = textwrap.dedent('''
    import functools
    import matplotlib.pyplot as plt
    import torch
    from bnutils import controls, interactive

    torch.set_num_threads(1)  # as in the other tests (conftest.py)

    calls = []

    def record(bound, steps=20, scale=0.5, kind="b"):
        """A control function that remembers what it was called with."""
        calls.append((bound, steps, scale, kind))
        fig, ax = plt.subplots()
        ax.plot([0, steps], [0, scale])
        return fig
''')


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A live kernel: BNBOOK_STATIC unset, so `live` builds real widgets."""
    env = {k: v for k, v in os.environ.items() if k != interactive.STATIC_ENV}
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env, cwd=str(tmp_path_factory.mktemp("kernel")))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        assert not errors(execute(kc, SETUP))
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def collect(kc: KernelClient, parent: str, timeout: float = 120) -> list[dict]:
    """The iopub messages the kernel sent while handling the request `parent`, until it went idle."""
    msgs = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != parent:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return msgs
        msgs.append(msg)


def execute(kc: KernelClient, code: str) -> list[dict]:
    return collect(kc, kc.execute(code))


def to_widget(kc: KernelClient, comm_id: str, data: dict) -> tuple[str, list[dict]]:
    """Send a message to a widget as the frontend does; its id and what the kernel sent while handling it."""
    msg = kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
    kc.shell_channel.send(msg)
    return msg["header"]["msg_id"], collect(kc, msg["header"]["msg_id"])


def errors(msgs: list[dict]) -> list[str]:
    return ["\n".join(m["content"]["traceback"]) for m in msgs if m["msg_type"] == "error"]


class Control:
    """The widgets of one `live(...)` control, as a frontend sees them: value widgets by name, button, output."""

    def __init__(self, kc: KernelClient, code: str):
        self.kc = kc
        msgs = execute(kc, code)
        assert not errors(msgs), errors(msgs)
        models: dict[str, dict] = {}  # widget models by comm id: the state they open with, then their updates
        for m in msgs:
            if m["msg_type"] == "comm_open":
                models[m["content"]["comm_id"]] = dict(m["content"]["data"]["state"])
            elif m["msg_type"] == "comm_msg" and m["content"]["data"].get("method") == "update":
                models[m["content"]["comm_id"]].update(m["content"]["data"]["state"])
        box = [s for s in models.values() if "widget-interact" in s.get("_dom_classes", [])]
        assert len(box) == 1, "live() displayed no interactive control"
        children = [c.removeprefix("IPY_MODEL_") for c in box[0]["children"]]
        self.state = {i: models[i] for i in children}
        self.values = {s["description"]: i for i, s in self.state.items()
                       if s["_model_name"] not in ("ButtonModel", "OutputModel")}
        self.button = next(i for i, s in self.state.items() if s["_model_name"] == "ButtonModel")
        self.output = next(i for i, s in self.state.items() if s["_model_name"] == "OutputModel")

    def set(self, name: str, **state) -> None:
        _, msgs = to_widget(self.kc, self.values[name], {"method": "update", "state": state, "buffer_paths": []})
        assert not errors(msgs), errors(msgs)

    def run(self) -> list[dict]:
        """Click 'Run'; the outputs routed into the control's output area (the kernel points it at the click)."""
        click, msgs = to_widget(self.kc, self.button, {"method": "custom", "content": {"event": "click"}})
        routed = any(m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == self.output
                     and m["content"]["data"].get("state", {}).get("msg_id") == click for m in msgs)
        assert routed, "the click's outputs were not sent to the control's output area"
        return [m for m in msgs if m["msg_type"] in ("display_data", "stream", "error")]


def images(outputs: list[dict]) -> int:
    return sum("image/png" in m["content"].get("data", {}) for m in outputs)


def test_each_control_reaches_the_function_and_its_figure_is_shown(kernel):
    c = Control(kernel, 'w = interactive.live(functools.partial(record, bound="bound"), steps=(10, 100, 10), '
                        'scale=(0.0, 1.0, 0.25), kind=["a", "b", "c"])')
    assert set(c.values) == {"steps", "scale", "kind"}, "a widget for a bound argument, or a control missing"
    assert [c.state[c.values[n]].get(k) for n, k in (("steps", "value"), ("scale", "value"), ("kind", "index"))] \
        == [20, 0.5, 1], "the sliders do not start at the function's defaults"
    c.set("steps", value=70)
    c.set("scale", value=0.75)
    c.set("kind", index=2)
    out = c.run()
    assert not errors(out), errors(out)
    assert images(out) == 1, f"no figure (or more than one) in the output area: {out}"
    printed = [m["content"]["text"] for m in execute(kernel, "print(calls)") if m["msg_type"] == "stream"]
    assert printed == ["[('bound', 70, 0.75, 'c')]\n"], f"the function got {printed}, not the values set"


def test_a_value_the_function_refuses_shows_its_message_not_a_traceback(kernel):
    c = Control(kernel, "w = interactive.live(functools.partial(controls.landscape_probe, cache=False), "
                        "steps=(10, 2000, 10))")  # a slider wider than the function's range [50, 2000]
    c.set("steps", value=10)
    out = c.run()
    text = "".join(m["content"].get("text", "") for m in out if m["msg_type"] == "stream")
    assert not errors(out) and "Traceback" not in text, out
    assert "steps=10 must be an integer in [50, 2000]" in text
    assert images(out) == 0


def test_a_chapter_control_draws_in_the_kernel(kernel):
    c = Control(kernel, "w = interactive.live(functools.partial(controls.landscape_probe, cache=False), "
                        "**controls.LANDSCAPE_PROBE)")
    c.set("steps", value=50)
    c.set("lr", index=3)
    out = c.run()
    assert not errors(out), errors(out)
    assert images(out) == 1


def test_controls_that_do_not_fit_the_function_are_refused(monkeypatch):
    monkeypatch.delenv(interactive.STATIC_ENV, raising=False)
    from bnutils import controls

    with pytest.raises(ValueError, match="bind the other arguments first"):
        interactive.live(controls.learning_rate, **controls.LEARNING_RATE)  # `sweep` left unbound
    with pytest.raises(ValueError, match="do not fit"):
        interactive.live(functools.partial(controls.learning_rate, {}), log10_lr=(-4.0, 0.5, 0.25), speed=(1, 2, 1))


def test_the_static_book_gets_a_note(monkeypatch):
    monkeypatch.setenv(interactive.STATIC_ENV, "1")
    assert interactive.live(print, note="here") is None
