"""Artifact previews: tables from CSV, TSV, JSON lines and Parquet, metrics, folders, and the
cases where there is nothing to show."""

from __future__ import annotations

from pathlib import Path

from ui_helpers import artifact

from workbench_dsl.ui.previews import preview


def test_tables_from_csv_tsv_jsonl_and_parquet(tmp_path: Path) -> None:
    csv_file = tmp_path / "data"  # no suffix: sniffed
    csv_file.write_text("x,y\n" + "".join(f"{i},{i * i}\n" for i in range(50)), encoding="utf-8")
    p = preview(artifact(csv_file, "system.Dataset", "data"))
    assert p.kind == "table" and p.columns == ["x", "y"] and len(p.rows) == 20
    assert p.rows[3] == ["3", "9"] and p.total_rows == 50
    tsv = tmp_path / "t.tsv"
    tsv.write_text("a\tb\n1\t2\n", encoding="utf-8")
    assert preview(artifact(tsv, "system.Dataset", "t")).rows == [["1", "2"]]
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text('{"a": 1, "b": [1]}\n{"a": 2, "c": null}\n', encoding="utf-8")
    p = preview(artifact(jsonl, "system.Dataset", "r"))
    assert p.kind == "table" and p.columns == ["a", "b", "c"] and p.rows[0] == ["1", "[1]", ""]
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "p"
    pq.write_table(pa.table({"n": list(range(30)), "s": [str(i) for i in range(30)]}), parquet)
    p = preview(artifact(parquet, "system.Dataset", "p"))
    assert p.kind == "table" and p.total_rows == 30 and p.rows[1] == ["1", "1"]


def test_metrics_text_folders_and_nothing(tmp_path: Path) -> None:
    m = preview(artifact(tmp_path / "m", "system.Metrics", "m", {"acc": 0.9, "note": "x"}))
    assert m.kind == "metrics" and m.numbers == [("acc", 0.9)] and m.chart is not None
    cm = preview(
        artifact(
            tmp_path / "c",
            "system.ClassificationMetrics",
            "c",
            {
                "confusionMatrix": {
                    "annotationSpecs": [{"displayName": "no"}, {"displayName": "yes"}],
                    "rows": [{"row": [5, 1]}, {"row": [2, 7]}],
                },
                "confidenceMetrics": [
                    {"confidenceThreshold": 1.0, "falsePositiveRate": 0.0, "recall": 0.0},
                    {"confidenceThreshold": 0.5, "falsePositiveRate": 0.2, "recall": 0.8},
                ],
            },
        )
    )
    assert cm.kind == "classification" and cm.rows[1] == ["yes", "2", "7"] and cm.chart
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}\n", encoding="utf-8")
    (folder / "sub" / "model.pkl").write_bytes(b"\x80\x04")
    files = preview(artifact(folder, "system.Model", "model"))
    assert files.kind == "files" and ("sub/model.pkl", 2) in files.files
    text = tmp_path / "notes.txt"
    text.write_text("hello\n", encoding="utf-8")
    assert preview(artifact(text, "system.Artifact", "n")).text == "hello\n"
    binary = tmp_path / "blob"
    binary.write_bytes(bytes(range(256)) * 4)
    assert preview(artifact(binary, "system.Artifact", "b")).note == "binary file, 1024 bytes"
    remote = {"name": "r", "uri": "gs://bucket/x", "type": {"schemaTitle": "system.Dataset"}}
    assert "stored remotely" in preview(remote).note
    gone = artifact(tmp_path / "gone", "system.Dataset", "g")
    assert "gone" in preview(gone).note
    assert "wrote no file" in preview({**gone, "absent": True}).note
