-- Each output file generation once (at-least-once delivery may repeat a row).
SELECT * EXCEPT (rn)
FROM (
  SELECT
    *,
    ROW_NUMBER() OVER (PARTITION BY record_id ORDER BY time DESC) AS rn
  FROM `${project}.${dataset}.${table}`
  WHERE kind = 'file'
)
WHERE rn = 1
