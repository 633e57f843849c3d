"""The end of a text run embeds each evaluation sentence once per encoder (issue 19, item 18):
the learned encoder's sentences for the evaluation are not embedded again for the report's map
and neighbours (which load the same weights back), and the model as loaded embeds them once."""

import collections

import torch
from text_fixtures import CORPUS, TEXT_RUN

import selfsup
import selfsup.run
from selfsup.models.text import TextEncoder


def weights(encoder):
    """The encoder's weights, as one hashable value (a loaded copy gives the same)."""
    flat = torch.cat([t.detach().flatten().double() for t in encoder.state_dict().values()])
    return round(float(flat.sum()), 3), round(float(flat.abs().sum()), 3)


def test_finish_embeds_each_sentence_once_per_encoder(tmp_path, tiny_bert, monkeypatch):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    embedded: collections.Counter = collections.Counter()
    counting = {"on": False}
    forward = TextEncoder.forward

    def counted(self, batch):
        if counting["on"]:
            embedded[weights(self)] += len(batch["input_ids"])
        return forward(self, batch)

    finish = selfsup.run.finish

    def counted_finish(*args, **kwargs):
        counting["on"] = True
        finish(*args, **kwargs)

    monkeypatch.setattr(TextEncoder, "forward", counted)
    monkeypatch.setattr(selfsup.run, "finish", counted_finish)
    cfg = selfsup.make_config(
        **TEXT_RUN
        | {
            "data.source": f"text:{corpus}",
            "method.name": "simcse",
            "model.path": str(tiny_bert),
            "train.batch_size": 5,
            "train.epochs": 1,
            "train.report": True,
        }
    )
    selfsup.pretrain(cfg, tmp_path / "run")
    # geometry on the 10 sentences, the report's map and nearest sentences: 10 per encoder
    assert sorted(embedded.values()) == [len(CORPUS), len(CORPUS)]
