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


def _scatter(pairs, parts, root, judge=None):
    """Every part as its job runs it (uniembed.stages.judge.score_in_parts): its shards of all the pairs, scored
    into the one shard directory of their key."""
    paths = []
    for part in range(parts):
        subset, plan = part_pairs(pairs, QUERIES_PER_SHARD, part, parts)
        path = part_path(root / "parts", part, parts)
        if subset:
            score_pairs(pairs, judge or FakeJudge(), path, root / "shards", queries_per_shard=QUERIES_PER_SHARD,
                        progress=False, part_plan=plan, shard_range=tuple(plan["shards"]))
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


def test_another_number_of_parts_or_one_job_scores_no_shard_again(tmp_path):
    """The parts share their key's shard directory: changing N, or going from parts to one job and back, resumes
    every shard (each verified) and gives the same table; a part removes only its own shards' orphans (the
    other parts write beside it), and no part marks the directory finished."""
    pairs = make_pairs(n_queries=11)
    first = FakeJudge()
    three = gather(_scatter(pairs, 3, tmp_path, first), pairs, QUERIES_PER_SHARD)
    [run] = [d for d in (tmp_path / "shards").iterdir() if d.is_dir()]
    assert len(list(run.glob("shard-*.parquet"))) == len(shard_pairs(pairs, QUERIES_PER_SHARD))
    assert not (run / "FINISHED").exists()
    mine, theirs = run / ".shard-00000.parquet.k1ll3d.tmp", run / ".shard-00003.parquet.wr1t1ng.tmp"
    mine.write_bytes(b"half"), theirs.write_bytes(b"half")
    again = FakeJudge()
    subset, plan = part_pairs(pairs, QUERIES_PER_SHARD, 0, 2)   # shards 0-1 of 4
    score_pairs(pairs, again, tmp_path / "p0.parquet", tmp_path / "shards", queries_per_shard=QUERIES_PER_SHARD,
                progress=False, part_plan=plan, shard_range=tuple(plan["shards"]))
    assert not mine.exists() and theirs.exists()
    assert gather(_scatter(pairs, 2, tmp_path, again), pairs, QUERIES_PER_SHARD).equals(three)
    one = score_pairs(pairs, again, tmp_path / "one.parquet", tmp_path / "shards",
                      queries_per_shard=QUERIES_PER_SHARD, progress=False)
    assert first.scored == len(pairs) and again.scored == 0 and one.equals(three)
    assert (run / "FINISHED").is_file()   # the one job marks it: parts after it still resume its shards
    assert gather(_scatter(pairs, 4, tmp_path, again), pairs, QUERIES_PER_SHARD).equals(three) and again.scored == 0
    changed = FakeJudge(settings={"backend": "fake", "weights": "w1"})   # other weights: another key, all scored
    _scatter(pairs, 2, tmp_path, changed)
    assert changed.scored == len(pairs)
