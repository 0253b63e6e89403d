-- Per-second traffic of a rollout's two releases as the reconciler read it (one row per
-- second that had traffic): what the dashboard charts canary against baseline from, kept after
-- the platform's own short retention has forgotten it. Released migrations are never edited.
CREATE TABLE rollout_samples (
    rollout_id TEXT NOT NULL REFERENCES rollouts (id),
    release TEXT NOT NULL CONSTRAINT rollout_samples_release_known CHECK (release IN ('canary', 'baseline')),
    second BIGINT NOT NULL,
    sample_json TEXT NOT NULL CONSTRAINT rollout_samples_sample_json_valid CHECK (json_valid(sample_json)),
    PRIMARY KEY (rollout_id, release, second)
) WITHOUT ROWID;
