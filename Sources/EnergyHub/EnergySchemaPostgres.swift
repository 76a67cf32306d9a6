import Shared

extension EnergySchema {
    /// The energy tables on the server database, with SQLite's names and columns: instants are
    /// bigint milliseconds since 1970 UTC, local dates text. Two differences, both of the engine:
    /// - `reading` is one table partitioned by month of `instant` (UTC months; declarative
    ///   partitioning), so retention drops a whole month at once, and PostgreSQL appends rows in
    ///   arrival order without SQLite's page-per-device cost, so there is no journal to fold:
    ///   `reading` holds every stored reading, where SQLite's view of the same name unites
    ///   `reading_by_device` and `reading_journal`. `reading_partition(instant)` creates a month's
    ///   partition before its first reading (under a lock, so several processes may ask at once).
    /// - a quarantined payload is `bytea`.
    public static let postgres: [PostgresMigration] = [
        PostgresMigration("energy-1-devices-readings-quarantine", """
            CREATE TABLE device (
                id text PRIMARY KEY,
                kind text NOT NULL CHECK (kind IN ('meter', 'pv')),
                format text NOT NULL CHECK (format IN ('canonical', 'teleinfo', 'tasmota', 'opendtu'))
            );
            -- Where a device was installed, from a local date (see the SQLite schema).
            CREATE TABLE device_installation (
                device_id text NOT NULL REFERENCES device(id),
                since text NOT NULL CHECK (since ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'),
                until text CHECK (until IS NULL OR until > since),
                building_id text NOT NULL REFERENCES building(id),
                dwelling_id text REFERENCES dwelling(id),
                PRIMARY KEY (device_id, since)
            );
            CREATE INDEX device_installation_by_dwelling ON device_installation(dwelling_id, since);
            CREATE INDEX device_installation_by_building ON device_installation(building_id, since);
            CREATE TABLE dwelling_tariff (
                dwelling_id text NOT NULL REFERENCES dwelling(id),
                since text NOT NULL,
                tariff text NOT NULL,
                PRIMARY KEY (dwelling_id, since)
            );
            CREATE TABLE dwelling_share (
                dwelling_id text NOT NULL REFERENCES dwelling(id),
                since text NOT NULL,
                share text NOT NULL,
                PRIMARY KEY (dwelling_id, since)
            );
            -- One row per (device, instant): storage is idempotent (INSERT ... ON CONFLICT DO NOTHING).
            CREATE TABLE reading (
                device_id text NOT NULL,
                instant bigint NOT NULL,
                energy_wh bigint NOT NULL CHECK (energy_wh >= 0),
                power_w double precision,
                segment bigint NOT NULL,
                time_source text NOT NULL CHECK (time_source IN ('device', 'received')),
                received_at bigint NOT NULL,
                PRIMARY KEY (device_id, instant)
            ) PARTITION BY RANGE (instant);
            -- Creates the partition of the UTC month holding `at` (milliseconds) if it is missing, and
            -- returns its name (reading_YYYY_MM). Concurrent callers wait on one transaction lock.
            -- Creating a partition locks the whole `reading` table until commit: call it in a short
            -- transaction of its own before a batch needs the month, never inside the batch.
            CREATE FUNCTION reading_partition(at bigint) RETURNS text LANGUAGE plpgsql AS $$
            DECLARE
                month_start timestamptz := date_trunc('month', to_timestamp(at / 1000.0) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
                name text := 'reading_' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM');
                low bigint := (extract(epoch FROM month_start) * 1000)::bigint;
                high bigint := (extract(epoch FROM month_start + interval '1 month') * 1000)::bigint;
            BEGIN
                -- pg_class read by a query (a fresh snapshot after the lock), not to_regclass (the
                -- session's catalog cache, which the advisory lock does not refresh).
                IF NOT EXISTS (SELECT 1 FROM pg_class WHERE relname = name AND relnamespace = current_schema()::regnamespace) THEN
                    PERFORM pg_advisory_xact_lock(hashtext('reading_partition'));
                    IF NOT EXISTS (SELECT 1 FROM pg_class WHERE relname = name AND relnamespace = current_schema()::regnamespace) THEN
                        EXECUTE format('CREATE TABLE %I PARTITION OF reading FOR VALUES FROM (%s) TO (%s)', name, low, high);
                    END IF;
                END IF;
                RETURN name;
            END;
            $$;
            -- A genuine reset of a device's index (meter replaced, rollover): a new segment starts.
            CREATE TABLE device_segment (
                device_id text NOT NULL,
                segment bigint NOT NULL,
                starts_at bigint NOT NULL,
                index_before_wh bigint NOT NULL,
                index_after_wh bigint NOT NULL,
                detected_at bigint NOT NULL,
                PRIMARY KEY (device_id, segment)
            );
            -- Every refused message or reading, with the first bytes of its payload and why.
            CREATE TABLE quarantine (
                id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                received_at bigint NOT NULL,
                topic text NOT NULL,
                payload bytea NOT NULL,
                reason text NOT NULL,
                detail text NOT NULL,
                device_id text,
                instant bigint,
                energy_wh bigint,
                time_source text,
                released_at bigint,
                payload_size bigint,
                payload_sha256 text
            );
            CREATE INDEX quarantine_by_received ON quarantine(received_at);
            -- The readings held aside as possible resets, read by every batch of a device when
            -- several processes share the server (PostgresIngestTransaction.sharedSequences).
            CREATE INDEX quarantine_open_candidates ON quarantine(device_id, instant)
                WHERE reason IN ('index_backwards', 'implausible_jump') AND released_at IS NULL;
            -- Instant ranges of a device whose stored readings changed (consumed by the savings upkeep).
            CREATE TABLE reading_change (
                device_id text PRIMARY KEY,
                from_instant bigint NOT NULL,
                to_instant bigint NOT NULL
            );
            """),
        // Several processes share the meters: the readings a device has held aside as possible
        // resets, as the process that last wrote it keeps them (held rows it gave up stay open in
        // quarantine, so the rows alone do not say it). No row: every open held row after the
        // device's latest reading, as at start.
        PostgresMigration("energy-2-device-candidates", """
            CREATE TABLE device_candidates (
                device_id text PRIMARY KEY,
                quarantine_ids bigint[] NOT NULL
            );
            """),
        // The changed ranges as the ingest writers record them: appended, never updated, so a
        // writer never waits for the savings upkeep holding a `reading_change` row (SQLDialect.readingChangeIntake).
        PostgresMigration("energy-3-reading-change-log", """
            CREATE TABLE reading_change_log (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                device_id text NOT NULL,
                from_instant bigint NOT NULL,
                to_instant bigint NOT NULL
            );
            """),
    ]
}
