SELECT
  day,
  model,
  COUNT(*) AS jobs,
  SUM(`rows`) AS `rows`,
  SUM(succeeded) AS succeeded,
  SUM(failed) AS failed,
  SUM(estimated_rows) AS estimated_rows,
  SUM(estimated_nanos) AS estimated_nanos,
  SUM(unpriced_rows) AS unpriced_rows,
  SUM(cost_nanos) AS cost_nanos
FROM `${project}.${dataset}.job_costs`
GROUP BY day, model
