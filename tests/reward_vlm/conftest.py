"""Fixtures for reward_vlm tests: tiny randomly initialised transformers models built offline
(saved to disk so loading goes through the real from_pretrained path) and a synthetic
"cube in bowl" image set with known ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

QUESTION_WORDS = (
    'Is the task " done ? Answer yes or no . Yes No put a cube in bowl take out of it the'
).split()


def ring_scenes(n: int, seed: int, side: int = 32, p_pos: float = 0.5):
    """Frames (n, side, side, 3) uint8 of a blue ring ("bowl") and a red square ("cube");
    label 1 when the cube is inside the ring. Background brightness varies per frame."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < p_pos).astype(np.float32)
    imgs = np.empty((n, side, side, 3), np.uint8)
    yy, xx = np.mgrid[:side, :side]
    r = side * 0.16
    for i in range(n):
        imgs[i] = rng.integers(150, 230)
        by, bx = rng.uniform(r + 3, side - r - 3, 2)
        if labels[i]:
            cy, cx = by + rng.uniform(-r / 3, r / 3), bx + rng.uniform(-r / 3, r / 3)
        else:
            while True:
                cy, cx = rng.uniform(3, side - 3, 2)
                if np.hypot(cy - by, cx - bx) > r * 1.6:
                    break
        imgs[i][np.abs(np.hypot(yy - by, xx - bx) - r) < 1.2] = (30, 60, 220)
        cy, cx = int(cy), int(cx)
        imgs[i, cy - 2:cy + 2, cx - 2:cx + 2] = (220, 30, 30)
    return imgs, labels


@pytest.fixture(scope="session")
def ring_data():
    """(train_images, train_labels, test_images, test_labels) of the synthetic cube-in-ring task."""
    x, y = ring_scenes(320, seed=0)
    xt, yt = ring_scenes(200, seed=1)
    return x, y, xt, yt


def _word_tokenizer(words):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "<bos>", "<eos>", *dict.fromkeys(words)])}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>", bos_token="<bos>", eos_token="<eos>")


@pytest.fixture(scope="session")
def tiny_paligemma_dir(tmp_path_factory):
    """A ~100k-parameter PaliGemma (SigLIP tower + Gemma LM) with a word-level tokenizer, saved."""
    import torch
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    path = tmp_path_factory.mktemp("tiny_paligemma")
    tok = _word_tokenizer(QUESTION_WORDS)
    proc = PaliGemmaProcessor(image_processor=SiglipImageProcessorPil(size={"height": 32, "width": 32}, image_seq_length=16),
                              tokenizer=tok)
    vocab = len(proc.tokenizer)
    cfg = PaliGemmaConfig(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8),
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         head_dim=16, vocab_size=vocab),
        image_token_index=proc.image_token_id, vocab_size=vocab, projection_dim=32, hidden_size=32)
    torch.manual_seed(0)
    PaliGemmaForConditionalGeneration(cfg).save_pretrained(path)
    proc.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_siglip_dir(tmp_path_factory):
    """A tiny random SigLIP vision tower + preprocessor config, saved."""
    import torch
    from transformers import SiglipVisionConfig, SiglipVisionModel

    path = tmp_path_factory.mktemp("tiny_siglip")
    torch.manual_seed(0)
    SiglipVisionModel(SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                         image_size=32, patch_size=8)).save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5] * 3, "image_std": [0.5] * 3}))
    return path
