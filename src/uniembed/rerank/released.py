"""Settings of UniME-V2-Reranker's released training lists (no imports: the workflow's config check reads them)."""

#: The positive's position in a training list: 1-5 with these probabilities (never 6th, the last), beside 5 negatives.
RELEASED_POSITION_WEIGHTS = (0.32, 0.32, 0.20, 0.11, 0.05)
