"""The production dashboard's figures, as plain functions.

- stats: Wilson 95% intervals and the A/B verdict (two-proportion z-test, or Fisher's exact test
  when an expected count is under 5)
- filters: date range, campaign and template, as SQL over the summary views
- panels: queue, approval rates, A/B, rejection reasons, reviewers, time to decision, cost; each a
  fixed number of queries over the summary views
- refresh: the summary views (PostgreSQL materialised views) and their refresh
- charts: the panels drawn as SVG on the server (no script, no CDN)
"""
