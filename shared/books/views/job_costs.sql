-- Each job once, by its latest totals row (the final one wins a tie); duplicates count once.
SELECT * EXCEPT (rn)
FROM (
  SELECT
    *,
    ROW_NUMBER() OVER (
      PARTITION BY job_id ORDER BY time DESC, final DESC, record_id DESC
    ) AS rn
  FROM `${project}.${dataset}.${table}`
  WHERE kind = 'job'
)
WHERE rn = 1
