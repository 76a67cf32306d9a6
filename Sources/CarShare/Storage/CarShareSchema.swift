import CarShareCore
import GRDB
import HubCore
import Shared

/// The car-share tables: people, cars, bookings, trips, and the ledger. Migrations are named and
/// append-only. Ledger rows are guarded twice: the code has no UPDATE or DELETE for them, and
/// triggers make SQLite refuse one.
public enum CarShareSchema {
    /// The message the ledger triggers raise.
    public static let immutableMessage = "posted_entry_immutable: ledger rows are never changed or deleted; post a correction"

    public static let register: HubDatabase.Schema = { migrator in
        migrator.registerMigration("carshare-1-people-cars-bookings-trips-ledger") { db in
            try db.execute(sql: """
                -- A person who may ride: optionally tied to a dwelling of the registry. estate_id is the
                -- estate whose association manages the member (the dwelling's, or the creator's).
                CREATE TABLE carshare_member (
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL CHECK (length(trim(name)) > 0),
                    phone TEXT NOT NULL DEFAULT '',
                    dwelling_id TEXT REFERENCES dwelling(id),
                    estate_id TEXT REFERENCES estate(id),
                    created_by TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                ) STRICT;
                CREATE INDEX carshare_member_by_dwelling ON carshare_member(dwelling_id);
                CREATE INDEX carshare_member_by_estate ON carshare_member(estate_id);
                -- A membership bought for a period of local days [period_start, period_end).
                CREATE TABLE carshare_membership (
                    id INTEGER PRIMARY KEY,
                    member_id INTEGER NOT NULL REFERENCES carshare_member(id),
                    period_start TEXT NOT NULL,
                    period_end TEXT NOT NULL CHECK (period_end > period_start),
                    fee_cents INTEGER NOT NULL CHECK (fee_cents >= 0),
                    purchased_on TEXT NOT NULL,
                    entry_number INTEGER REFERENCES carshare_entry(number),
                    deferred INTEGER NOT NULL DEFAULT 0,
                    recognition_entry INTEGER REFERENCES carshare_entry(number),
                    created_by TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    UNIQUE (member_id, period_start)
                ) STRICT;
                CREATE TABLE carshare_driver (
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL CHECK (length(trim(name)) > 0),
                    user_name TEXT UNIQUE REFERENCES hub_user(name),
                    phone TEXT NOT NULL DEFAULT '',
                    licence_checked_on TEXT,
                    trained_on TEXT,
                    active INTEGER NOT NULL DEFAULT 1,
                    version INTEGER NOT NULL DEFAULT 1
                ) STRICT;
                CREATE TABLE carshare_vehicle (
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL CHECK (length(trim(name)) > 0),
                    plate TEXT NOT NULL UNIQUE,
                    battery_capacity_wh INTEGER CHECK (battery_capacity_wh IS NULL OR battery_capacity_wh > 0),
                    initial_odometer_km INTEGER NOT NULL DEFAULT 0 CHECK (initial_odometer_km >= 0),
                    active INTEGER NOT NULL DEFAULT 1
                ) STRICT;
                -- start_at/end_at: UTC milliseconds, half-open. version: optimistic locking.
                CREATE TABLE carshare_booking (
                    id INTEGER PRIMARY KEY,
                    vehicle_id INTEGER NOT NULL REFERENCES carshare_vehicle(id),
                    rider_id INTEGER NOT NULL REFERENCES carshare_member(id),
                    driver_id INTEGER REFERENCES carshare_driver(id),
                    booked_by TEXT NOT NULL,
                    start_at INTEGER NOT NULL,
                    end_at INTEGER NOT NULL CHECK (end_at > start_at),
                    purpose TEXT NOT NULL DEFAULT '',
                    status TEXT NOT NULL CHECK (status IN ('requested', 'confirmed', 'completed', 'cancelled', 'late_cancellation', 'no_show', 'turned_down')),
                    fee_entry INTEGER REFERENCES carshare_entry(number),
                    version INTEGER NOT NULL DEFAULT 1,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL
                ) STRICT;
                CREATE INDEX carshare_booking_by_vehicle ON carshare_booking(vehicle_id, start_at);
                CREATE INDEX carshare_booking_by_driver ON carshare_booking(driver_id, start_at);
                CREATE INDEX carshare_booking_by_rider ON carshare_booking(rider_id, start_at);
                -- Every change of a booking: who, when, from what to what, and why.
                CREATE TABLE carshare_booking_event (
                    id INTEGER PRIMARY KEY,
                    booking_id INTEGER NOT NULL REFERENCES carshare_booking(id),
                    at INTEGER NOT NULL,
                    by_user TEXT NOT NULL,
                    from_status TEXT,
                    to_status TEXT NOT NULL,
                    reason TEXT NOT NULL DEFAULT '',
                    driver_id INTEGER
                ) STRICT;
                CREATE INDEX carshare_booking_event_by_booking ON carshare_booking_event(booking_id, id);
                CREATE TABLE carshare_trip (
                    id INTEGER PRIMARY KEY,
                    booking_id INTEGER UNIQUE REFERENCES carshare_booking(id),
                    vehicle_id INTEGER NOT NULL REFERENCES carshare_vehicle(id),
                    driver_id INTEGER NOT NULL REFERENCES carshare_driver(id),
                    unbooked_reason TEXT,
                    start_at INTEGER NOT NULL,
                    end_at INTEGER NOT NULL CHECK (end_at > start_at),
                    start_odometer_km INTEGER NOT NULL CHECK (start_odometer_km >= 0),
                    end_odometer_km INTEGER NOT NULL CHECK (end_odometer_km >= start_odometer_km),
                    battery_start_pct INTEGER NOT NULL CHECK (battery_start_pct BETWEEN 0 AND 100),
                    battery_end_pct INTEGER NOT NULL CHECK (battery_end_pct BETWEEN 0 AND 100),
                    incidents TEXT NOT NULL DEFAULT '',
                    flags TEXT NOT NULL DEFAULT '',
                    logged_by TEXT NOT NULL,
                    logged_at INTEGER NOT NULL,
                    CHECK ((booking_id IS NULL) = (unbooked_reason IS NOT NULL))
                ) STRICT;
                CREATE INDEX carshare_trip_by_vehicle ON carshare_trip(vehicle_id, start_at);
                CREATE TABLE carshare_trip_rider (
                    trip_id INTEGER NOT NULL REFERENCES carshare_trip(id),
                    member_id INTEGER NOT NULL REFERENCES carshare_member(id),
                    fee_cents INTEGER NOT NULL,
                    entry_number INTEGER REFERENCES carshare_entry(number),
                    PRIMARY KEY (trip_id, member_id)
                ) STRICT;
                CREATE TABLE carshare_charging (
                    id INTEGER PRIMARY KEY,
                    vehicle_id INTEGER NOT NULL REFERENCES carshare_vehicle(id),
                    at INTEGER NOT NULL,
                    energy_wh INTEGER NOT NULL CHECK (energy_wh > 0),
                    cost_cents INTEGER NOT NULL CHECK (cost_cents >= 0),
                    method TEXT,
                    entry_number INTEGER REFERENCES carshare_entry(number),
                    note TEXT NOT NULL DEFAULT '',
                    logged_by TEXT NOT NULL,
                    logged_at INTEGER NOT NULL
                ) STRICT;
                CREATE INDEX carshare_charging_by_vehicle ON carshare_charging(vehicle_id, at);
                -- The ledger. number and receipt are gapless, assigned in the write transaction.
                CREATE TABLE carshare_entry (
                    number INTEGER PRIMARY KEY,
                    date TEXT NOT NULL CHECK (date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
                    kind TEXT NOT NULL,
                    label TEXT NOT NULL,
                    member_id INTEGER REFERENCES carshare_member(id),
                    reverses INTEGER UNIQUE REFERENCES carshare_entry(number),
                    corrects INTEGER REFERENCES carshare_entry(number),
                    receipt INTEGER UNIQUE,
                    posted_at INTEGER NOT NULL,
                    posted_by TEXT NOT NULL,
                    previous_hash TEXT NOT NULL,
                    hash TEXT NOT NULL
                ) STRICT;
                CREATE INDEX carshare_entry_by_date ON carshare_entry(date, number);
                CREATE INDEX carshare_entry_by_member ON carshare_entry(member_id);
                CREATE TABLE carshare_entry_line (
                    entry_number INTEGER NOT NULL REFERENCES carshare_entry(number),
                    line INTEGER NOT NULL,
                    account TEXT NOT NULL,
                    member_id INTEGER REFERENCES carshare_member(id),
                    amount_cents INTEGER NOT NULL CHECK (amount_cents <> 0),
                    PRIMARY KEY (entry_number, line)
                ) STRICT, WITHOUT ROWID;
                -- Covering index: the balance report reads only this.
                CREATE INDEX carshare_entry_line_by_account ON carshare_entry_line(account, member_id, amount_cents);
                CREATE TABLE carshare_closed_month (
                    month TEXT PRIMARY KEY NOT NULL CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]'),
                    closed_by TEXT NOT NULL,
                    closed_at INTEGER NOT NULL
                ) STRICT;
                -- The first answer to an idempotent request (payments, trip logs), replayed on retry.
                CREATE TABLE carshare_request (
                    idempotency_key TEXT PRIMARY KEY NOT NULL,
                    scope TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    response TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                ) STRICT;
                CREATE TRIGGER carshare_entry_no_update BEFORE UPDATE ON carshare_entry
                    BEGIN SELECT RAISE(ABORT, '\(immutableMessage)'); END;
                CREATE TRIGGER carshare_entry_no_delete BEFORE DELETE ON carshare_entry
                    BEGIN SELECT RAISE(ABORT, '\(immutableMessage)'); END;
                CREATE TRIGGER carshare_entry_line_no_update BEFORE UPDATE ON carshare_entry_line
                    BEGIN SELECT RAISE(ABORT, '\(immutableMessage)'); END;
                CREATE TRIGGER carshare_entry_line_no_delete BEFORE DELETE ON carshare_entry_line
                    BEGIN SELECT RAISE(ABORT, '\(immutableMessage)'); END;
                CREATE TRIGGER carshare_closed_month_no_delete BEFORE DELETE ON carshare_closed_month
                    BEGIN SELECT RAISE(ABORT, 'a closed month stays closed'); END;
                """)
        }
        // Every use of the car is a logbook line (issue 15): a kind, a purpose, deliveries, a
        // charging run's charge. SQLite cannot change a CHECK in place, so the table is rebuilt
        // (GRDB runs migrations with foreign-key checks deferred to the end).
        migrator.registerMigration("carshare-2-logbook") { db in
            try db.execute(sql: """
                CREATE TABLE carshare_trip_new (
                    id INTEGER PRIMARY KEY,
                    booking_id INTEGER UNIQUE REFERENCES carshare_booking(id),
                    vehicle_id INTEGER NOT NULL REFERENCES carshare_vehicle(id),
                    driver_id INTEGER NOT NULL REFERENCES carshare_driver(id),
                    kind TEXT NOT NULL DEFAULT 'ride' CHECK (kind IN ('ride', 'association_run', 'charging_run', 'garage')),
                    purpose TEXT,
                    households_served INTEGER CHECK (households_served BETWEEN 0 AND 1000),
                    charging_id INTEGER UNIQUE REFERENCES carshare_charging(id),
                    unbooked_reason TEXT,
                    start_at INTEGER NOT NULL,
                    end_at INTEGER NOT NULL CHECK (end_at > start_at),
                    start_odometer_km INTEGER NOT NULL CHECK (start_odometer_km >= 0),
                    end_odometer_km INTEGER NOT NULL CHECK (end_odometer_km >= start_odometer_km),
                    battery_start_pct INTEGER NOT NULL CHECK (battery_start_pct BETWEEN 0 AND 100),
                    battery_end_pct INTEGER NOT NULL CHECK (battery_end_pct BETWEEN 0 AND 100),
                    incidents TEXT NOT NULL DEFAULT '',
                    flags TEXT NOT NULL DEFAULT '',
                    logged_by TEXT NOT NULL,
                    logged_at INTEGER NOT NULL,
                    -- A ride is booked, or says why not; the association's own uses have a purpose and no booking.
                    CHECK (kind <> 'ride' OR (booking_id IS NULL) = (unbooked_reason IS NOT NULL)),
                    CHECK (kind = 'ride' OR (booking_id IS NULL AND purpose IS NOT NULL))
                ) STRICT;
                INSERT INTO carshare_trip_new (id, booking_id, vehicle_id, driver_id, kind, unbooked_reason, start_at, end_at, start_odometer_km,
                    end_odometer_km, battery_start_pct, battery_end_pct, incidents, flags, logged_by, logged_at)
                    SELECT id, booking_id, vehicle_id, driver_id, 'ride', unbooked_reason, start_at, end_at, start_odometer_km,
                    end_odometer_km, battery_start_pct, battery_end_pct, incidents, flags, logged_by, logged_at FROM carshare_trip;
                DROP TABLE carshare_trip;
                ALTER TABLE carshare_trip_new RENAME TO carshare_trip;
                CREATE INDEX carshare_trip_by_vehicle ON carshare_trip(vehicle_id, start_at);
                CREATE INDEX carshare_trip_by_kind ON carshare_trip(kind, start_at);
                -- The dwellings an association run delivered to, when the driver wrote them down.
                CREATE TABLE carshare_trip_dwelling (
                    trip_id INTEGER NOT NULL REFERENCES carshare_trip(id),
                    dwelling_id TEXT NOT NULL REFERENCES dwelling(id),
                    PRIMARY KEY (trip_id, dwelling_id)
                ) STRICT;
                -- Kilometres nobody logged, explained after the fact.
                CREATE TABLE carshare_odometer_note (
                    id INTEGER PRIMARY KEY,
                    vehicle_id INTEGER NOT NULL REFERENCES carshare_vehicle(id),
                    from_km INTEGER NOT NULL CHECK (from_km >= 0),
                    to_km INTEGER NOT NULL CHECK (to_km > from_km),
                    note TEXT NOT NULL CHECK (length(note) > 0),
                    noted_by TEXT NOT NULL,
                    noted_at INTEGER NOT NULL
                ) STRICT;
                CREATE INDEX carshare_odometer_note_by_vehicle ON carshare_odometer_note(vehicle_id, from_km);
                """)
        }
    }
}
