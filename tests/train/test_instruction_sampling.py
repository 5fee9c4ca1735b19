"""Training draws one of a query's instruction prompts per (query, step) from the sampler's seeded
RNG (UniIR samples a prompt per example each time it is used); the same step draws the same prompt."""
from uniembed.embed.embedder import EmbedItem
from uniembed.train.data import BatchSampler, TrainingQuery, TrainingSet, assemble_batch

PROMPTS = ("Retrieve an image of this caption.", "Find me a picture matching:", "Show the image for:",
           "Which image fits this text?")


def _data(n=8):
    queries = [TrainingQuery(f"q{i}", EmbedItem(f"text {i}", None, PROMPTS[0]), (f"c{i}",), (), PROMPTS)
               for i in range(n)]
    return TrainingSet(queries, {f"c{i}": EmbedItem(f"cand {i}") for i in range(n)}, "mbeir")


def _prompts(sampler, data, steps):
    drawn = []
    for _ in range(steps):
        batch = assemble_batch(data, *sampler.next())
        drawn.append(tuple(item.instruction for item in batch.queries))
    return drawn


def test_every_prompt_is_used_and_a_query_sees_several():
    data = _data()
    drawn = _prompts(BatchSampler(8, 4, seed=0), data, 20)
    assert {p for step in drawn for p in step} == set(PROMPTS)
    first_query = [step[0] for step in drawn]
    assert len(set(first_query)) > 1


def test_the_same_step_draws_the_same_prompts_after_a_resume():
    data = _data()
    straight = _prompts(BatchSampler(8, 4, seed=0), data, 10)
    sampler = BatchSampler(8, 4, seed=0)
    first = _prompts(sampler, data, 4)
    resumed = BatchSampler(8, 4, seed=0)
    resumed.load_state(sampler.state())
    assert first + _prompts(resumed, data, 6) == straight


def test_a_query_with_one_instruction_keeps_it():
    data = _data()
    data.queries[:] = [TrainingQuery(q.query_id, q.item, q.positive_ids, q.negative_ids, (PROMPTS[2],))
                       for q in data.queries]
    assert all(p == PROMPTS[0] for step in _prompts(BatchSampler(8, 4, seed=0), data, 3) for p in step)
