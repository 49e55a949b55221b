SELECT count(*) FROM batched_outcome_rows(:per, 10 / :per);
