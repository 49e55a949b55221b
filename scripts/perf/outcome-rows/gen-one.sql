SELECT count(*) FROM one_outcome_rows(10);
