-- A job with several labels counts once under each; a job without the label is not here.
SELECT
  day,
  l.key AS label,
  l.value AS value,
  COUNT(*) AS jobs,
  SUM(`rows`) AS `rows`,
  SUM(succeeded) AS succeeded,
  SUM(failed) AS failed,
  SUM(estimated_rows) AS estimated_rows,
  SUM(estimated_nanos) AS estimated_nanos,
  SUM(unpriced_rows) AS unpriced_rows,
  SUM(cost_nanos) AS cost_nanos
FROM `${project}.${dataset}.job_costs`, UNNEST(labels) AS l
GROUP BY day, label, value
