import GRDB

// The schema, as versioned migrations. The SQL keeps to what SQLite and PostgreSQL both
// accept (snake_case names, TEXT/INTEGER, UNIQUE constraints, ON CONFLICT upserts);
// docs/state.md lists the few places where the PostgreSQL version differs (identity
// columns, timestamptz, a plpgsql trigger for the append-only audit trail).

enum SQLiteSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-state") { db in
            for statement in v1 { try db.execute(sql: statement) }
        }
        migrator.registerMigration("v2-coordination") { db in try CoordinationSchema.migrate(db) }
        migrator.registerMigration("v3-lock-holder-keys") { db in try CoordinationSchema.migrateHolderKeys(db) }
        migrator.registerMigration("v4-agent-invites") { db in try InviteSchema.migrate(db) }
        return migrator
    }

    static let v1: [String] = [
        """
        CREATE TABLE deployment (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            environment TEXT NOT NULL,
            status TEXT NOT NULL,
            failure_reason TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (name, environment)
        )
        """,
        """
        CREATE TABLE generation (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            deployment_id INTEGER NOT NULL REFERENCES deployment(id),
            number INTEGER NOT NULL,
            status TEXT NOT NULL,
            document TEXT NOT NULL,
            document_hash TEXT NOT NULL,
            failure_reason TEXT,
            created_at TEXT NOT NULL,
            activated_at TEXT,
            UNIQUE (deployment_id, number)
        )
        """,
        // At most one active generation per deployment, whatever the code does.
        "CREATE UNIQUE INDEX generation_one_active ON generation(deployment_id) WHERE status = 'active'",
        """
        CREATE TABLE instance (
            id TEXT PRIMARY KEY,
            generation_id INTEGER NOT NULL REFERENCES generation(id),
            member TEXT NOT NULL,
            provider TEXT NOT NULL,
            provider_handle TEXT,
            state TEXT NOT NULL,
            address TEXT,
            failure_reason TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (generation_id, member)
        )
        """,
        "CREATE INDEX instance_state ON instance(state)",
        """
        CREATE TABLE job (
            id TEXT PRIMARY KEY,
            instance_id TEXT NOT NULL REFERENCES instance(id),
            name TEXT NOT NULL,
            payload TEXT NOT NULL,
            state TEXT NOT NULL,
            result TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (instance_id, name)
        )
        """,
        """
        CREATE TABLE fact (
            instance_id TEXT NOT NULL REFERENCES instance(id),
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (instance_id, name)
        )
        """,
        """
        CREATE TABLE secret (
            deployment_id INTEGER NOT NULL REFERENCES deployment(id),
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (deployment_id, name)
        )
        """,
        """
        CREATE TABLE failed_deployment (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            deployment_id INTEGER NOT NULL REFERENCES deployment(id),
            generation INTEGER,
            reason TEXT NOT NULL,
            failed_at TEXT NOT NULL
        )
        """,
        "CREATE INDEX failed_deployment_by_deployment ON failed_deployment(deployment_id, id)",
        // Keyed by names, not by deployment id: the lock is taken before anything is recorded.
        """
        CREATE TABLE launch_lock (
            deployment TEXT NOT NULL,
            environment TEXT NOT NULL,
            holder_id TEXT,
            host TEXT,
            pid INTEGER,
            fencing_token INTEGER NOT NULL,
            acquired_at TEXT,
            expires_at TEXT,
            PRIMARY KEY (deployment, environment)
        )
        """,
        // Plain text columns, no foreign keys: the trail outlives whatever it talks about.
        """
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            outcome TEXT NOT NULL,
            deployment TEXT,
            environment TEXT,
            detail TEXT
        )
        """,
        "CREATE INDEX audit_by_deployment ON audit(deployment, environment, id)",
        """
        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END
        """,
        """
        CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END
        """,
    ]
}
