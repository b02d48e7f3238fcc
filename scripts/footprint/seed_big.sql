-- 200k API dossiers over 18 months for 100 clients of 50 partners (skewed: the first clients send most),
-- 10k historical dossiers, scores and snapshots, audit rows, outcomes, overrides, webhook deliveries, statements.
\timing on
SELECT setseed(0.42);
INSERT INTO dossiers_company (siren, vat, name, naf_code, created_at)
SELECT lpad(g::text, 9, '0'), '', 'Company ' || g, '62.01Z', now() - interval '600 days'
FROM generate_series(1, 150000) g;

CREATE TEMP TABLE d AS
SELECT g AS n, gen_random_uuid() AS id,
       1 + floor(100 * power(random(), 2))::int AS client_id,
       CASE WHEN g % 4 = 0 THEN 'b2c' ELSE 'b2b' END AS segment,
       now() - random() * interval '540 days' AS created_at,
       random() AS r
FROM generate_series(1, 200000) g;
ALTER TABLE d ADD COLUMN partner_id bigint;
UPDATE d SET partner_id = c.partner_id FROM riskoffice_apiclient c WHERE c.id = d.client_id;

INSERT INTO dossiers_individual (reference, created_at, partner_id)
SELECT 'C-' || n, created_at, partner_id FROM d WHERE segment = 'b2c';

INSERT INTO dossiers_dossier (id, origin, segment, requested_amount, bank_tokens_json, status, status_detail, decision,
  decision_overridden, created_at, updated_at, company_id, partner_id, individual_id, applicant_name, naf_code,
  requeue_at, requeues, api_client_id)
SELECT d.id, 'api', d.segment, 1000 + (d.n % 90) * 1000, '\x00', 
       CASE WHEN d.r < 0.01 THEN 'pending' WHEN d.r < 0.03 THEN 'failed' ELSE 'scored' END, '',
       CASE WHEN d.r < 0.03 THEN '' WHEN d.r < 0.6 THEN 'accept' WHEN d.r < 0.85 THEN 'guarantee' ELSE 'refuse' END,
       false, d.created_at, d.created_at, CASE WHEN d.segment = 'b2b' THEN 1 + d.n % 150000 END, d.partner_id,
       i.id, '', '', NULL, 0, d.client_id
FROM d LEFT JOIN dossiers_individual i ON d.segment = 'b2c' AND i.reference = 'C-' || d.n AND i.partner_id = d.partner_id;

INSERT INTO dossiers_dossier (id, origin, segment, requested_amount, bank_tokens_json, status, status_detail, decision,
  decision_overridden, created_at, updated_at, company_id, partner_id, individual_id, applicant_name, naf_code,
  requeue_at, requeues, api_client_id)
SELECT gen_random_uuid(), 'history', 'b2b', 5000, '\x00', 'scored', '', 'accept', false,
       now() - interval '600 days' + g * interval '1 second', now() - interval '600 days', 1 + g, NULL, NULL, '', '', NULL, 0, NULL
FROM generate_series(1, 10000) g;

INSERT INTO scoring_featuresnapshot (features, provenance, collected_at, dossier_id)
SELECT '{"revenue": 1}', '{}', created_at, id FROM dossiers_dossier WHERE status = 'scored';
INSERT INTO scoring_score (probability_of_default, score, band, decision, recommended_limit, rules_fired, base_value,
  contributions, factors, created_at, dossier_id, model_version_id, policy_version_id, snapshot_id, data_flags,
  version, trigger)
SELECT 0.03, 700, 'B', CASE WHEN d.decision = '' THEN 'accept' ELSE d.decision END, NULL, '[]', -3.1, '{"revenue": 0.1}', '[]',
       d.created_at + interval '1 second', d.id, 1, 1, s.id, '[]', 1, 'application'
FROM dossiers_dossier d JOIN scoring_featuresnapshot s ON s.dossier_id = d.id;

INSERT INTO riskoffice_auditevent (at, actor_system, action, object_type, object_id, before, after, actor_client_id, actor_user_id)
SELECT created_at, '', 'dossier.created', 'dossiers.dossier', id::text, NULL, '{}', api_client_id, NULL
FROM dossiers_dossier WHERE origin = 'api';
INSERT INTO riskoffice_auditevent (at, actor_system, action, object_type, object_id, before, after, actor_client_id, actor_user_id)
SELECT created_at + interval '1 second', 'scoring', 'dossier.scored', 'dossiers.dossier', id::text, NULL, '{}', NULL, NULL
FROM dossiers_dossier WHERE origin = 'api' AND status = 'scored';

INSERT INTO dossiers_outcome (status, occurred_on, created_at, updated_at, dossier_id, recorded_by_id, reported_by_client_id)
SELECT CASE WHEN random() < 0.9 THEN 'repaid' ELSE 'defaulted' END, (created_at + interval '200 days')::date,
       created_at + interval '200 days', created_at + interval '200 days', id, NULL, api_client_id
FROM dossiers_dossier WHERE origin = 'api' AND status = 'scored' AND random() < 0.3;
INSERT INTO riskoffice_auditevent (at, actor_system, action, object_type, object_id, before, after, actor_client_id, actor_user_id)
SELECT o.created_at, '', 'dossier.outcome_recorded', 'dossiers.dossier', o.dossier_id::text, NULL, '{}', o.reported_by_client_id, NULL
FROM dossiers_outcome o;

INSERT INTO dossiers_override (from_decision, to_decision, reason, created_at, dossier_id, decided_by_id)
SELECT decision, CASE WHEN decision = 'refuse' THEN 'accept' ELSE 'refuse' END, 'Known guarantor.',
       created_at + interval '1 hour', id, 1 + floor(random() * 20)::int
FROM dossiers_dossier WHERE origin = 'api' AND status = 'scored' AND random() < 0.02;
INSERT INTO riskoffice_auditevent (at, actor_system, action, object_type, object_id, before, after, actor_client_id, actor_user_id)
SELECT created_at, '', 'dossier.overridden', 'dossiers.dossier', dossier_id::text, '{}', '{}', NULL, decided_by_id
FROM dossiers_override;

INSERT INTO alerts_webhookendpoint (url, secret, event_types, is_active, disabled_reason, created_at, partner_id)
SELECT 'https://hooks.example/' || id, '\x00', '[]', true, '', now() - interval '600 days', id FROM riskoffice_partner WHERE id <= 30;
INSERT INTO alerts_webhookdelivery (message_id, event_type, payload, status, attempts, next_attempt_at, last_status_code,
  last_error, delivered_at, created_at, endpoint_id)
SELECT 'msg_' || replace(d.id::text, '-', ''), 'score.completed', '{}',
       CASE WHEN random() < 0.995 THEN 'delivered' ELSE 'pending' END, 1, NULL, 204, '', d.created_at, d.created_at, e.id
FROM dossiers_dossier d JOIN alerts_webhookendpoint e ON e.partner_id = d.partner_id WHERE d.status = 'scored';
UPDATE alerts_webhookdelivery SET next_attempt_at = created_at + interval '5 seconds', delivered_at = NULL, last_status_code = 500
WHERE status = 'pending';

INSERT INTO scoring_financialstatement (fiscal_year_end, source, revenue, created_at, company_id, supplied_by_client_id)
SELECT date '2024-12-31', 'partner', 1000000, now() - interval '300 days', 1 + (g * 7) % 150000, 1 + g % 100
FROM generate_series(1, 60000) g;
ANALYZE;
SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE n_live_tup > 1000 ORDER BY n_live_tup DESC;
