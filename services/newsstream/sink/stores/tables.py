"""Table names of the store (the same in every backend)."""

ARTICLES = "articles"
TICKER_ITEMS = "ticker_items"
DEAD_LETTERS = "dead_letters"
STORIES = "stories"
TABLES = (ARTICLES, TICKER_ITEMS, DEAD_LETTERS, STORIES)
