"""The umT5 text encoder: Wan's zero padding, the instruction cache, determinism, loading."""

from __future__ import annotations

import pytest
import torch

from xwam_model.text import TextEncoder, clean_prompt, tiny_tokenizer

TEXT_DIM, TEXT_LEN = 32, 8


@pytest.fixture
def encoder() -> TextEncoder:
    return TextEncoder.tiny(text_dim=TEXT_DIM, text_len=TEXT_LEN, seed=0)


@pytest.fixture
def counted(encoder) -> tuple[TextEncoder, list[int]]:
    """The encoder, and the batch size of each forward pass its model runs."""
    batches: list[int] = []

    def count(module, args, kwargs):
        batches.append(kwargs["input_ids"].shape[0])

    encoder.model.register_forward_pre_hook(count, with_kwargs=True)
    return encoder, batches


def _real_tokens(encoder: TextEncoder, prompt: str) -> int:
    return len(encoder.tokenizer(clean_prompt(prompt)).input_ids)  # pieces + </s>


def test_the_tiny_tokenizer_is_a_real_unigram_tokenizer():
    tokenizer = tiny_tokenizer()
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    assert len(tokenizer) > 100
    ids = tokenizer("open the drawer").input_ids
    assert ids[-1] == tokenizer.eos_token_id and tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == "open the drawer"


def test_embeddings_are_real_tokens_then_zeros(encoder):
    prompts = ["turn on", "", "pick up the red cube and place it in the bowl"]
    context = encoder.encode(prompts)
    assert context.shape == (3, TEXT_LEN, TEXT_DIM) and context.dtype == torch.float32
    # A prompt shorter than text_len, the empty one, one longer (truncated).
    assert _real_tokens(encoder, prompts[0]) < TEXT_LEN < _real_tokens(encoder, prompts[2])

    for row, prompt in zip(context, prompts):
        real = min(_real_tokens(encoder, prompt), TEXT_LEN)  # long prompts are truncated
        assert (row[:real].norm(dim=-1) > 0).all()
        assert torch.equal(row[real:], torch.zeros_like(row[real:]))
    assert _real_tokens(encoder, "") == 1  # the empty prompt still has its </s>

    # The kept rows are the encoder's own outputs for the masked, padded sequence (Wan's way).
    tokens = encoder.tokenizer(
        prompts[0], padding="max_length", max_length=TEXT_LEN, return_tensors="pt"
    )
    with torch.no_grad():
        hidden = encoder.model(**tokens).last_hidden_state[0]
    real = _real_tokens(encoder, prompts[0])
    torch.testing.assert_close(context[0, :real], hidden[:real], atol=1e-6, rtol=1e-6)


def test_instructions_are_encoded_once(counted):
    encoder, batches = counted
    first = encoder.encode(["open the drawer"])
    assert batches == [1]
    again = encoder.encode(["  open   the drawer "])  # the same prompt once cleaned
    assert batches == [1] and torch.equal(first, again)

    again.zero_()  # the caller's copy; the cache is not touched
    assert torch.equal(encoder.encode(["open the drawer"]), first)
    assert batches == [1]

    both = encoder.encode(["open the drawer", "close the drawer", "close the drawer"])
    assert batches == [1, 1]  # only the new prompt ran, once
    assert torch.equal(both[0], first[0]) and torch.equal(both[1], both[2])


def test_the_cache_forgets_the_least_recently_used(counted):
    encoder, batches = counted
    encoder.cache_size = 2
    for prompt in ("a cube", "a bowl", "a cube", "a plate"):  # "a bowl" is now the oldest
        encoder.encode([prompt])
    assert len(batches) == 3
    encoder.encode(["a cube"])
    assert len(batches) == 3
    encoder.encode(["a bowl"])
    assert len(batches) == 4
    encoder.clear_cache()
    encoder.encode(["a bowl"])
    assert len(batches) == 5


def test_encode_pair_gives_the_instruction_and_the_empty_prompt(encoder):
    cond, uncond = encoder.encode_pair("stack the green block")
    assert cond.shape == uncond.shape == (1, TEXT_LEN, TEXT_DIM)
    assert torch.equal(cond, encoder.encode(["stack the green block"]))
    assert torch.equal(uncond, encoder.encode([""]))
    assert not torch.equal(cond, uncond)


def test_tiny_encoder_is_deterministic_for_a_seed():
    state = torch.random.get_rng_state()
    a = TextEncoder.tiny(seed=3).encode(["wipe the table"])
    b = TextEncoder.tiny(seed=3).encode(["wipe the table"])
    c = TextEncoder.tiny(seed=4).encode(["wipe the table"])
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is untouched


def test_from_pretrained_loads_local_folders(encoder, tmp_path):
    prompts = ["turn on the faucet", ""]
    expected = encoder.encode(prompts)

    encoder.save_pretrained(tmp_path / "flat")
    loaded = TextEncoder.from_pretrained(tmp_path / "flat", text_len=TEXT_LEN)
    assert loaded.text_dim == TEXT_DIM
    torch.testing.assert_close(loaded.encode(prompts), expected, atol=1e-6, rtol=1e-6)

    # A diffusers pipeline folder: text_encoder/ and tokenizer/ side by side.
    encoder.model.save_pretrained(tmp_path / "pipeline" / "text_encoder")
    encoder.tokenizer.save_pretrained(tmp_path / "pipeline" / "tokenizer")
    loaded = TextEncoder.from_pretrained(tmp_path / "pipeline", text_len=TEXT_LEN)
    torch.testing.assert_close(loaded.encode(prompts), expected, atol=1e-6, rtol=1e-6)

    with pytest.raises(FileNotFoundError, match="config.json"):
        TextEncoder.from_pretrained(tmp_path / "missing")


def test_bad_prompts_are_named(encoder):
    with pytest.raises(TypeError, match="list of strings"):
        encoder.encode("open the drawer")
    with pytest.raises(ValueError, match="at least one"):
        encoder.encode([])
    with pytest.raises(TypeError, match="strings"):
        encoder.encode(["ok", 3])
    with pytest.raises(ValueError, match="text_len"):
        TextEncoder.tiny(text_len=0)
