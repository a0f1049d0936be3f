"""Stories: which story an entry joins, its tags and related posts, its editorial
state (review, withdrawals, retention) and its comments."""
