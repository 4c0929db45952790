"""Model names: a misspelled one fails at once where the hub cannot answer; hub names keep the hub path."""
import socket

import huggingface_hub.constants
import pytest
from transformers import BertConfig

from harness import models
from harness.models import ModelLoadError


@pytest.fixture
def hub(monkeypatch):
    """The hub switched on (conftest sets HF_HUB_OFFLINE=1), no proxy, no remembered probe; AutoConfig
    replaced by a spy that answers from ``hub.configs`` (a hub or cache lookup) and records every call."""

    class Hub:
        calls: list = []
        configs: dict = {}
        connects: list = []

    class Spy:
        @staticmethod
        def from_pretrained(name, **kwargs):
            Hub.calls.append((name, kwargs))
            if name in Hub.configs:
                return Hub.configs[name]
            raise OSError(f"{name} is not a local folder and is not a valid model identifier on the hub")

    monkeypatch.setattr(huggingface_hub.constants, "is_offline_mode", lambda: False)
    for var in models._PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(models, "_hub_probes", {})
    monkeypatch.setattr(models, "AutoConfig", Spy)
    return Hub


def _connect(hub, error=None):
    class Connection:
        def close(self):
            pass

    def connect(address, timeout=None):
        hub.connects.append((address, timeout))
        if error is not None:
            raise error
        return Connection()

    return connect


def test_unreachable_hub_fails_at_once_with_the_near_name(hub, monkeypatch):
    monkeypatch.setattr(socket, "create_connection", _connect(hub, OSError(101, "Network is unreachable")))
    with pytest.raises(ModelLoadError) as err:
        models.model_modality("minlm")
    msg = str(err.value)
    assert "'minlm': it is not a known name" in msg and "Did you mean 'minilm'?" in msg
    assert "huggingface.co" in msg and "Network is unreachable" in msg
    assert "tiny-bert" in msg and "vit-small-p4" in msg  # the valid names
    assert hub.calls == [("minlm", {"local_files_only": True})]  # the local cache only: no hub request
    assert len(hub.connects) == 1 and hub.connects[0][0] == ("huggingface.co", 443) and hub.connects[0][1] <= 5
    with pytest.raises(ModelLoadError, match="Did you mean 'tiny-vit'"):
        models._load_config("tiny-vitt")
    assert len(hub.connects) == 1  # probed once per process


def test_unreachable_hub_still_loads_a_cached_hub_model(hub, monkeypatch):
    monkeypatch.setattr(socket, "create_connection", _connect(hub, OSError(101, "Network is unreachable")))
    hub.configs["someorg/cached-bert"] = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2)
    assert models.model_modality("someorg/cached-bert") == "text"
    assert hub.calls == [("someorg/cached-bert", {"local_files_only": True})]


def test_reachable_hub_keeps_the_hub_path(hub, monkeypatch):
    monkeypatch.setattr(socket, "create_connection", _connect(hub))
    hub.configs["someorg/my-bert"] = BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2)
    assert models._load_config("someorg/my-bert") is hub.configs["someorg/my-bert"]
    assert hub.calls == [("someorg/my-bert", {})]  # the ordinary hub lookup
    with pytest.raises(ModelLoadError) as err:  # the hub answered: not found there, and a near name
        models._load_config("minlm")
    assert "not a valid model identifier" in str(err.value) and "Did you mean 'minilm'?" in str(err.value)


def test_offline_needs_no_probe(hub, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "is_offline_mode", lambda: True)
    monkeypatch.setattr(socket, "create_connection", _connect(hub))
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE=1"):
        models._load_config("minlm")
    assert hub.connects == [] and hub.calls == [("minlm", {"local_files_only": True})]


def test_behind_a_proxy_the_hub_client_decides(hub, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setattr(socket, "create_connection", _connect(hub, OSError("must not be called")))
    assert models.hub_unreachable() is None and hub.connects == []


def test_a_name_that_cannot_be_a_hub_id_asks_no_one(hub, monkeypatch):
    monkeypatch.setattr(socket, "create_connection", _connect(hub))
    with pytest.raises(ModelLoadError, match="cannot be a hub name") as err:
        models._load_config("./no/such/folder")
    assert "a local directory with config.json" in str(err.value)
    assert hub.calls == [] and hub.connects == []


def test_probe_of_a_closed_port_answers_at_once():
    with socket.socket() as s:  # a free local port, then closed: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    why = models._probe(f"http://127.0.0.1:{port}", timeout=2.0)
    assert why is not None and "cannot be reached" in why and "127.0.0.1" in why
