import Logging
import PostgresNIO

/// The PostgreSQL schema, as numbered migrations recorded in `schema_version`. They run when
/// a store opens, all in one transaction under an advisory lock, so two coordinators starting
/// at once on an empty database do not both create it: the second waits, then finds the
/// versions applied. The tables are SQLite's (docs/state.md, "Schema") with PostgreSQL's
/// types: identity columns, `timestamptz`, `uuid` instance ids, `jsonb` documents, and a
/// plpgsql trigger that makes the audit trail append-only.
enum PostgresSchema {
    struct Migration {
        var version: Int
        var name: String
        var statements: [String]
    }

    /// Advisory lock keys (64-bit, per database): one for migrations, one taken by every
    /// write transaction (`PostgresStateStore.write`), which makes writers take turns as
    /// SQLite's `BEGIN IMMEDIATE` does.
    static let migrationLock: Int64 = 0x636F_6E64_0001
    static let writerLock: Int64 = 0x636F_6E64_0002

    static let migrations: [Migration] = [
        Migration(version: 1, name: "v1-state", statements: v1),
        Migration(version: 2, name: "v2-leadership", statements: v2),
    ]

    /// Creates `schema_version` if needed and applies the missing migrations; refuses a
    /// database that a newer conductor migrated (a version this one does not know).
    static func migrate(_ session: PostgresSession, url: PostgresStateURL) async throws {
        // A second coordinator waits for the first one's migration (up to 5 minutes, not the
        // 15 s of other statements: a migration of a large state may take that long).
        try await session.execute("SET LOCAL lock_timeout = '300s'")
        try await session.execute("SET LOCAL statement_timeout = '300s'")
        try await session.execute("SELECT pg_advisory_xact_lock(\(migrationLock))")
        try await session.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        let applied = Set(try await session.rows("SELECT version FROM schema_version").map { try $0["version"].decode(Int.self) })
        let known = Set(migrations.map(\.version))
        if let unknown = applied.subtracting(known).max() {
            throw StateStoreError(
                .schema, "the PostgreSQL state \(url) was migrated by a newer conductor (schema version \(unknown)); upgrade this one")
        }
        for migration in migrations where !applied.contains(migration.version) {
            for statement in migration.statements { try await session.execute(PostgresQuery(unsafeSQL: statement)) }
            try await session.execute("INSERT INTO schema_version (version, name) VALUES (\(migration.version), \(migration.name))")
        }
    }

    static let v1: [String] = [
        """
        CREATE TABLE deployment (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name text NOT NULL,
            environment text NOT NULL,
            status text NOT NULL,
            failure_reason text,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            UNIQUE (name, environment)
        )
        """,
        """
        CREATE TABLE generation (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            deployment_id bigint NOT NULL REFERENCES deployment(id),
            number integer NOT NULL,
            status text NOT NULL,
            document text NOT NULL,
            document_hash text NOT NULL,
            failure_reason text,
            created_at timestamptz NOT NULL,
            activated_at timestamptz,
            UNIQUE (deployment_id, number)
        )
        """,
        "CREATE UNIQUE INDEX generation_one_active ON generation(deployment_id) WHERE status = 'active'",
        """
        CREATE TABLE instance (
            id uuid PRIMARY KEY,
            generation_id bigint NOT NULL REFERENCES generation(id),
            member text NOT NULL,
            provider text NOT NULL,
            provider_handle text,
            state text NOT NULL,
            address text,
            failure_reason text,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            UNIQUE (generation_id, member)
        )
        """,
        "CREATE INDEX instance_state ON instance(state)",
        // The payload is sealed text (StateSeal), not JSON.
        """
        CREATE TABLE job (
            id text PRIMARY KEY,
            instance_id uuid NOT NULL REFERENCES instance(id),
            name text NOT NULL,
            payload text NOT NULL,
            state text NOT NULL,
            result jsonb,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            UNIQUE (instance_id, name)
        )
        """,
        """
        CREATE TABLE fact (
            instance_id uuid NOT NULL REFERENCES instance(id),
            name text NOT NULL,
            value jsonb NOT NULL,
            updated_at timestamptz NOT NULL,
            PRIMARY KEY (instance_id, name)
        )
        """,
        """
        CREATE TABLE secret (
            deployment_id bigint NOT NULL REFERENCES deployment(id),
            name text NOT NULL,
            value text NOT NULL,
            created_at timestamptz NOT NULL,
            PRIMARY KEY (deployment_id, name)
        )
        """,
        """
        CREATE TABLE failed_deployment (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            deployment_id bigint NOT NULL REFERENCES deployment(id),
            generation integer,
            reason text NOT NULL,
            failed_at timestamptz NOT NULL
        )
        """,
        "CREATE INDEX failed_deployment_by_deployment ON failed_deployment(deployment_id, id)",
        """
        CREATE TABLE launch_lock (
            deployment text NOT NULL,
            environment text NOT NULL,
            holder_id text,
            host text,
            pid integer,
            fencing_token bigint NOT NULL,
            acquired_at timestamptz,
            expires_at timestamptz,
            PRIMARY KEY (deployment, environment)
        )
        """,
        """
        CREATE TABLE audit (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at timestamptz NOT NULL,
            actor text NOT NULL,
            action text NOT NULL,
            subject text NOT NULL,
            outcome text NOT NULL,
            deployment text,
            environment text,
            detail jsonb
        )
        """,
        "CREATE INDEX audit_by_deployment ON audit(deployment, environment, id)",
        // Append-only whoever asks, the table's owner included (a REVOKE would not bind the owner).
        """
        CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the audit trail is append-only' USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """,
        "CREATE TRIGGER audit_no_update_or_delete BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
        "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
        "CREATE TABLE coordination_token (id integer PRIMARY KEY CHECK (id = 1), reserved_through bigint NOT NULL)",
        """
        CREATE TABLE lock_holder (
            lock_name text NOT NULL,
            token bigint NOT NULL,
            lock_limit integer NOT NULL,
            owner text,
            holder text NOT NULL,
            ttl_ms bigint NOT NULL,
            expires_at_ms bigint NOT NULL,
            key_hash text,
            acquired_by text,
            PRIMARY KEY (lock_name, token)
        )
        """,
        // `seq` keeps the order signals first came in (SQLite's rowid); an upsert keeps it.
        """
        CREATE TABLE event_signal (
            scope text NOT NULL,
            event text NOT NULL,
            node text NOT NULL,
            data jsonb,
            signalled_at_ms bigint NOT NULL,
            seq bigint GENERATED ALWAYS AS IDENTITY,
            PRIMARY KEY (scope, event, node)
        )
        """,
        """
        CREATE TABLE agent_invite (
            token_sha256 text PRIMARY KEY,
            instance_id text NOT NULL,
            created_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL,
            used_at timestamptz
        )
        """,
        // A value sealed with the state key when the database was first used: a store opened
        // with another key finds out at once, not at the first secret.
        "CREATE TABLE seal_check (id integer PRIMARY KEY CHECK (id = 1), sealed text NOT NULL)",
    ]

    /// Standby coordinators (`PostgresStateStore+Leadership.swift`): one lease row per
    /// coordinator scope, whose epoch is the fencing token of every write of the active one,
    /// and a row per coordinator process taking part, for `status`. Times are the server's
    /// (`clock_timestamp()`), so coordinators on hosts whose clocks differ agree on expiry.
    static let v2: [String] = [
        """
        CREATE TABLE coordinator_leader (
            scope text PRIMARY KEY,
            epoch bigint NOT NULL,
            holder text NOT NULL,
            host text NOT NULL,
            pid integer NOT NULL,
            since timestamptz NOT NULL,
            renewed_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL
        )
        """,
        """
        CREATE TABLE coordinator_member (
            scope text NOT NULL,
            holder text NOT NULL,
            host text NOT NULL,
            pid integer NOT NULL,
            started_at timestamptz NOT NULL,
            seen_at timestamptz NOT NULL,
            PRIMARY KEY (scope, holder)
        )
        """,
    ]
}

/// One connection, in a transaction or not, with the logger its queries go to.
struct PostgresSession: Sendable {
    let connection: PostgresConnection
    let logger: Logger

    func rows(_ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
        try await self.connection.query(query, logger: self.logger).collect().map { $0.makeRandomAccess() }
    }

    func first(_ query: PostgresQuery) async throws -> PostgresRandomAccessRow? {
        try await self.rows(query).first
    }

    func execute(_ query: PostgresQuery) async throws {
        _ = try await self.connection.query(query, logger: self.logger).collect()
    }
}
