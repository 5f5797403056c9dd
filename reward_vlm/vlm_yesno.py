"""Generative VLM success classifier (RoboFuME): ask "Is <task> done?" and compare P(yes), P(no).

Any transformers image-text-to-text checkpoint (PaliGemma, SmolVLM/Idefics3, Qwen2-VL, LLaVA)
loaded with AutoModelForImageTextToText + AutoProcessor. The success logit is
logsumexp(next-token logits of the "yes" spellings) - logsumexp(those of the "no" spellings),
so sigmoid(logit) = P(yes) / (P(yes) + P(no)). Fine-tuning trains the vision-language projector
only (a few MB), with BCE on that logit; the artefact stores the whole model for offline use.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import torch

from reward_vlm.base import SuccessClassifier
from reward_vlm.errors import ClassifierLoadError

MODEL_DIR = "vlm"
#: module names of the vision->language projector in the supported architectures
PROJECTOR_NAMES = ("multi_modal_projector", "connector", "visual.merger", "mm_projector")


@dataclasses.dataclass
class VlmYesNoConfig:
    """Generative VLM yes/no scoring."""

    model: str = "HuggingFaceTB/SmolVLM-256M-Instruct"  # hub id or local directory of an image-text-to-text model
    question: str = 'Is the task "{instruction}" done? Answer yes or no.'  # prompt; {instruction} is the task's instruction
    yes_words: tuple[str, ...] = ("yes", "Yes")  # spellings whose first token counts as "yes"
    no_words: tuple[str, ...] = ("no", "No")  # spellings whose first token counts as "no"
    finetune: str = "projector"  # what `fit` trains: projector (vision-language connector) or none
    dtype: str = "float32"  # model dtype: float32 / bfloat16 / float16
    rationale_tokens: int = 0  # > 0: predict_with_rationale generates this many tokens of explanation

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("VlmYesNoConfig.model must name a hub id or a directory")
        if "{instruction}" not in self.question:
            raise ValueError(f"VlmYesNoConfig.question must contain {{instruction}}, got {self.question!r}")
        if not self.yes_words or not self.no_words:
            raise ValueError("VlmYesNoConfig.yes_words and no_words must not be empty")
        if self.finetune not in ("projector", "none"):
            raise ValueError(f"VlmYesNoConfig.finetune must be 'projector' or 'none', got {self.finetune!r}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"VlmYesNoConfig.dtype must be float32/bfloat16/float16, got {self.dtype!r}")
        if self.rationale_tokens < 0:
            raise ValueError(f"VlmYesNoConfig.rationale_tokens must be >= 0, got {self.rationale_tokens}")
        self.yes_words, self.no_words = tuple(self.yes_words), tuple(self.no_words)


def _first_token_ids(tokenizer, words: tuple[str, ...]) -> list[int]:
    """First token id of each spelling (with and without a leading space), unknown tokens dropped."""
    ids: list[int] = []
    unk = tokenizer.unk_token_id
    for w in words:
        for variant in (w, " " + w):
            enc = tokenizer.encode(variant, add_special_tokens=False)
            if enc and enc[0] != unk and enc[0] not in ids:
                ids.append(int(enc[0]))
    return ids


class VlmYesNoClassifier(SuccessClassifier):
    """Family "vlm_yesno": P(yes) vs P(no) of an image-text-to-text model, projector fine-tuning."""

    family = "vlm_yesno"
    inference_batch = 8

    def __init__(self, tasks, cfg: VlmYesNoConfig | None = None, *, _model_path: str | None = None, **kw) -> None:
        super().__init__(tasks, **kw)
        import transformers

        self.cfg = cfg or VlmYesNoConfig()
        source = _model_path or self.cfg.model
        self.processor = transformers.AutoProcessor.from_pretrained(source)
        self.model = transformers.AutoModelForImageTextToText.from_pretrained(source, dtype=getattr(torch, self.cfg.dtype))
        self.model.to(self.device).eval()
        tok = self.processor.tokenizer
        tok.padding_side = "left"  # the next-token position is then the last column for every row
        self.yes_ids = _first_token_ids(tok, self.cfg.yes_words)
        self.no_ids = _first_token_ids(tok, self.cfg.no_words)
        if not self.yes_ids or not self.no_ids:
            raise ClassifierLoadError(f"{source}: tokenizer has no token for {self.cfg.yes_words} / {self.cfg.no_words}")
        if set(self.yes_ids) & set(self.no_ids):
            raise ClassifierLoadError(f"{source}: 'yes' and 'no' spellings share tokens {set(self.yes_ids) & set(self.no_ids)}")
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.projector = self._find_projector()
        if self.cfg.finetune == "projector":
            for p in self.projector.parameters():
                p.requires_grad_(True)
        self._prompts = [self._prompt(t.instruction) for t in self.tasks]

    @property
    def model_name(self) -> str:
        return f"vlm yes/no ({self.cfg.model}, {self.model.config.model_type})"

    def _find_projector(self) -> torch.nn.Module:
        modules = dict(self.model.named_modules())
        for name, module in modules.items():
            if any(name == p or name.endswith("." + p) for p in PROJECTOR_NAMES):
                return module
        raise ClassifierLoadError(f"{self.cfg.model}: no vision-language projector among modules named {PROJECTOR_NAMES}")

    def _prompt(self, instruction: str) -> str:
        question = self.cfg.question.format(instruction=instruction)
        if getattr(self.processor, "chat_template", None):
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
            return self.processor.apply_chat_template(messages, add_generation_prompt=True)
        image_token = getattr(self.processor, "image_token", None) or "<image>"
        return f"{image_token}{question}"  # PaliGemma-style prefix prompt

    def _batch(self, images: np.ndarray, task_idx: np.ndarray) -> dict:
        prompts = [self._prompts[i] for i in task_idx]
        inputs = self.processor(images=[[im] for im in images], text=prompts, padding=True, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items() if k != "labels"}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        return inputs

    def _forward_logits(self, images: np.ndarray, task_idx: np.ndarray, prepared: bool = False) -> torch.Tensor:
        out = self.model(**self._batch(images, task_idx), logits_to_keep=1)
        last = out.logits[:, -1, :].float()
        return torch.logsumexp(last[:, self.yes_ids], dim=-1) - torch.logsumexp(last[:, self.no_ids], dim=-1)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.projector.parameters() if p.requires_grad]

    def _modules(self) -> list[torch.nn.Module]:
        return [self.projector]

    def _rationale(self, images: np.ndarray, task_idx: np.ndarray, probs: np.ndarray) -> list[str]:
        base = super()._rationale(images, task_idx, probs)
        if not self.cfg.rationale_tokens:
            return base
        with torch.inference_mode():
            inputs = self._batch(images, task_idx)
            gen = self.model.generate(**inputs, max_new_tokens=self.cfg.rationale_tokens, do_sample=False)
        texts = self.processor.tokenizer.batch_decode(gen[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        return [f"{b}; model says: {t.strip()}" for b, t in zip(base, texts)]

    def _save_weights(self, directory: pathlib.Path) -> None:
        self.model.save_pretrained(directory / MODEL_DIR)
        self.processor.save_pretrained(directory / MODEL_DIR)

    def _family_config(self) -> dict:
        return {"vlm_yesno": dataclasses.asdict(self.cfg)}

    @classmethod
    def _load(cls, directory: pathlib.Path, meta: dict, device: str) -> "VlmYesNoClassifier":
        cfg = VlmYesNoConfig(**meta["config"]["vlm_yesno"])
        return cls(meta["tasks"], cfg, device=device, _model_path=str(directory / MODEL_DIR),
                   temperature=meta["temperature"], thresholds=meta["thresholds"], version=meta["version"],
                   parent_version=meta.get("parent_version"), metrics=meta.get("metrics"))
