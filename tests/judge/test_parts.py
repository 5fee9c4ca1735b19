"""Scatter-gather of the judge (uniembed.judge.parts): N parts of whole shards, gathered, give the one-job table
byte for byte; a part that is not the piece the pairs need is refused by name."""
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.judge.test_scoring import FakeJudge, make_pairs
from uniembed.artifacts import write_parquet
from uniembed.judge.parts import gather, part_pairs, part_path, write_part
from uniembed.judge.scoring import score_pairs, shard_pairs
from uniembed.mine.schemas import JUDGE_SCORES

QUERIES_PER_SHARD = 3


def _scatter(pairs, parts, root):
    paths = []
    for part in range(parts):
        subset, plan = part_pairs(pairs, QUERIES_PER_SHARD, part, parts)
        path = part_path(root / "parts", part, parts)
        if subset:
            score_pairs(subset, FakeJudge(), path, root / "shards" / f"part-{part}", queries_per_shard=QUERIES_PER_SHARD,
                        progress=False, part_plan=plan)
        else:
            write_part(JUDGE_SCORES.empty_table(), path, plan)
        paths.append(path)
    return paths


@pytest.mark.parametrize("parts", [1, 2, 3, 4, 6])
def test_parts_cover_every_shard_once_and_gather_to_the_one_job_bytes(tmp_path, parts):
    pairs = make_pairs(n_queries=11)
    one = score_pairs(pairs, FakeJudge(), tmp_path / "one.parquet", tmp_path / "one", queries_per_shard=QUERIES_PER_SHARD,
                      progress=False)
    ranges = [part_pairs(pairs, QUERIES_PER_SHARD, p, parts)[1]["shards"] for p in range(parts)]
    assert [r[0] for r in ranges] == [0, *[r[1] for r in ranges[:-1]]]   # contiguous, in order
    assert ranges[-1][1] == len(shard_pairs(pairs, QUERIES_PER_SHARD))   # up to the last shard
    gathered = gather(_scatter(pairs, parts, tmp_path), pairs, QUERIES_PER_SHARD)
    assert gathered.equals(one)
    write_parquet(gathered, tmp_path / "gathered.parquet", JUDGE_SCORES)
    assert (tmp_path / "gathered.parquet").read_bytes() == (tmp_path / "one.parquet").read_bytes()


def test_a_part_of_another_split_or_other_pairs_is_refused_naming_it(tmp_path):
    pairs = make_pairs(n_queries=11)
    paths = _scatter(pairs, 3, tmp_path)
    with pytest.raises(ValueError, match="part-2-of-3.parquet: judge part 1 of 3 .*part is 2, expected 1"):
        gather([paths[0], paths[2], paths[1]], pairs, QUERIES_PER_SHARD)
    with pytest.raises(ValueError, match="pairs_digest"):
        gather(paths, make_pairs(n_queries=11, per_query=3), QUERIES_PER_SHARD)
    table = pq.read_table(paths[1])
    tampered = table.set_column(1, "candidate_id", pa.array(["x"] * table.num_rows))
    pq.write_table(tampered, paths[1])
    with pytest.raises(ValueError, match="part-1-of-3.parquet: judge part 1 of 3 .*row 0 is"):
        gather(paths, pairs, QUERIES_PER_SHARD)
    pq.write_table(table.replace_schema_metadata(None), paths[1])
    with pytest.raises(ValueError, match="part 1 of 3 .*pairs_digest is None"):
        gather(paths, pairs, QUERIES_PER_SHARD)
