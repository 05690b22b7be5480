"""Evaluation: fixed question sets run through the system, scored the same way every run.

- `metrics`: pure metric functions (hit@k, MRR, phrase match, nDCG, recall, ...).
- `formats`: the JSONL question-set format, and SQuAD / BEIR importers.
- `runner`: asks the questions in process or over HTTP and scores each answer.
- `report`: printed tables, quality gates, failure listings.

The command line is `scripts/evaluate.py`.
"""
