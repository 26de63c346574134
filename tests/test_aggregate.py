"""Cohort tables from per-pair files: values carried over exactly, failed pairs listed with their reason."""

import json

import pandas as pd

from cohortreg.study.aggregate import PAIR_COLUMNS, PairResult, read_benchmark, write_tables

BENCH = "s\th:m:s\tmax_rss\tmax_vms\n12.5\t0:00:12\t812.25\t900\n"


def pair(tmp_path, moving, ok=True):
    d = tmp_path / moving
    d.mkdir()
    r = PairResult("c", moving, "01", "ants", str(d / "metrics.json"), str(d / "labels.tsv"), str(d / "bench.tsv"),
                   str(d / "bench_aff.tsv"), (str(d / "register.log"),))
    if ok:
        (d / "metrics.json").write_text(json.dumps({"dice_mean": 0.75, "hd95": 3.5, "folding_frac": 0.001,
                                                    "sdlogj": 0.2, "n_labels": 2}))
        (d / "labels.tsv").write_text("label\tdice\thd95\tfixed_voxels\twarped_voxels\n1\t0.7\t3\t10\t12\n2\t0.8\t4\t5\t6\n")
        (d / "bench.tsv").write_text(BENCH)
        (d / "bench_aff.tsv").write_text(BENCH.replace("12.5", "3.0").replace("812.25", "400"))
    else:
        (d / "register.log").write_text("INFO start\nERROR subject '03', file 't1.nii.gz': not a 3D image\n")
    return r


def test_tables_carry_values_and_list_failed_pairs(tmp_path):
    results = [pair(tmp_path, "02"), pair(tmp_path, "03", ok=False)]
    out = [str(tmp_path / f"{n}.tsv") for n in ("pairs", "labels", "summary")]
    write_tables(results, *out)
    pairs = pd.read_csv(out[0], sep="\t", dtype={"moving": str, "fixed": str})
    assert list(pairs.columns) == PAIR_COLUMNS
    ok = pairs.set_index("moving").loc["02"]
    assert (ok.dice_mean, ok.hd95, ok.seconds, ok.seconds_affine, ok.max_rss_mb, ok.status) == \
        (0.75, 3.5, 12.5, 3.0, 812.25, "ok")
    bad = pairs.set_index("moving").loc["03"]
    assert bad.status == "failed" and bad.error == "subject '03', file 't1.nii.gz': not a 3D image"
    labels = pd.read_csv(out[1], sep="\t", dtype={"moving": str})
    assert labels[["moving", "label", "dice"]].values.tolist() == [["02", 1, 0.7], ["02", 2, 0.8]]
    summary = pd.read_csv(out[2], sep="\t")
    assert (summary.n_ok.item(), summary.n_failed.item(), summary.dice_mean_mean.item()) == (1, 1, 0.75)


def test_missing_or_empty_benchmark_is_nan(tmp_path):
    (tmp_path / "empty.tsv").write_text("")
    for path in ("", str(tmp_path / "none.tsv"), str(tmp_path / "empty.tsv")):
        s, rss, threads = read_benchmark(path)
        assert s != s and rss != rss and threads != threads


def test_tables_from_batch_manifests_equal_tables_from_files(tmp_path):
    """batch_size > 1: the metrics batch jobs gather each pair's row; the tables must not change."""
    from cohortreg.study.aggregate import collect, pair_row

    results = [pair(tmp_path, "02"), pair(tmp_path, "03", ok=False), pair(tmp_path, "04")]
    manifest = tmp_path / "batch-00000.json"
    manifest.write_text(json.dumps({"items": [
        {"item": "metrics c/02->01 [ants]", "status": "ok", **dict(zip(("row", "label_lines"), pair_row(results[0])))},
        {"item": "metrics c/03->01 [ants]", "status": "failed", "error": "x"}]}))
    from_files, labels_files = collect(results)
    for p in ("02", "04"):  # the files are gone: the manifest's row for 02 must be used, 04 is not there
        (tmp_path / p / "metrics.json").unlink()
    from_manifests, labels_manifests = collect(results, [str(manifest), str(tmp_path / "absent.json")])
    assert from_manifests.drop(index=2).equals(from_files.drop(index=2))
    assert labels_manifests == labels_files.replace("c\t04\t01\tants\t1\t0.7\t3\t10\t12\n", "").replace(
        "c\t04\t01\tants\t2\t0.8\t4\t5\t6\n", "")
    assert from_manifests.loc[2, "status"] == "failed"


def test_rows_of_two_code_versions_are_said_and_flags_listed_worst_first(tmp_path, caplog):
    import logging

    from cohortreg.study.aggregate import log_findings

    results = [pair(tmp_path, m) for m in ("02", "03", "04")]
    for r, version, qc in zip(results, ("0.1.0+aaaa", "0.1.0+bbbb", "0.1.0+bbbb"), ("pass", "warn", "fail")):
        rec = json.loads(open(r.metrics).read())
        open(r.metrics, "w").write(json.dumps({**rec, "version": version, "qc": qc, "qc_reason": f"because {qc}"}))
    out = [str(tmp_path / f"{n}.tsv") for n in ("pairs", "labels", "summary")]
    pairs = write_tables(results, *out)
    assert list(pairs["version"]) == ["0.1.0+aaaa", "0.1.0+bbbb", "0.1.0+bbbb"]
    summary = pd.read_csv(out[2], sep="\t")
    assert summary.versions.item() == "0.1.0+aaaa,0.1.0+bbbb" and (summary.n_qc_warn.item(), summary.n_qc_fail.item()) == (1, 1)
    with caplog.at_level(logging.INFO, logger="test"):
        log_findings(pairs, logging.getLogger("test"))
    text = caplog.text
    assert text.index("QC fail: c/04") < text.index("QC warn: c/03") and "2 code versions" in text
