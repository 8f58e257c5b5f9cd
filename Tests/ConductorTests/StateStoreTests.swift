import Foundation
import GRDB
import Mesh
import PostgresNIO
import Testing

@testable import Conductor

@Suite("State store: schema, intents, transitions, audit")
struct StateStoreTests {
    @Test func migratesFromScratchAndReopensWithItsData() async throws {
        let dir = try StateTestDirectory()
        let clock = StateTestClock()
        do {
            let store = try SQLiteStateStore(path: dir.databasePath, options: stateTestOptions(clock: clock))
            #expect(try store.appliedMigrations() == ["v1-state", "v2-coordination", "v3-lock-holder-keys", "v4-agent-invites"])
            _ = try await store.ensureDeployment("shop", environment: "prod", actor: stateTestActor)
            try store.close()
        }
        let journal = try await DatabaseQueue(path: dir.databasePath).read { db in
            try String.fetchOne(db, sql: "PRAGMA journal_mode")
        }
        #expect(journal == "wal")

        let reopened = try SQLiteStateStore(path: dir.databasePath, options: stateTestOptions(clock: clock))
        #expect(try reopened.appliedMigrations() == ["v1-state", "v2-coordination", "v3-lock-holder-keys", "v4-agent-invites"])
        let deployment = try await reopened.deployment("shop", environment: "prod")
        #expect(deployment?.status == .recorded)
        #expect(try await reopened.deployment("shop", environment: "staging") == nil)
        try reopened.close()
    }

    /// The store holds secrets and job payloads: only its owner may read it, its WAL included,
    /// also when an older conductor left the directory and files readable by all.
    @Test func theStateIsReadableByItsOwnerOnly() async throws {
        let dir = try StateTestDirectory()
        let state = dir.url.path + "/state"
        func mode(_ path: String) -> Int? {
            ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? NSNumber)?.intValue
        }
        do {
            let store = try SQLiteStateStore(path: state + "/state.sqlite")
            _ = try await store.ensureDeployment("shop", environment: "prod", actor: stateTestActor)
            #expect(mode(state) == 0o700)
            #expect(mode(state + "/state.sqlite") == 0o600)
            #expect(mode(state + "/state.sqlite-wal") == 0o600)
            try store.close()
        }
        // Left wide by an older conductor: narrowed when opened again.
        for path in [state, state + "/state.sqlite"] { chmod(path, 0o755) }
        let reopened = try SQLiteStateStore(path: state + "/state.sqlite")
        #expect(mode(state) == 0o700)
        #expect(mode(state + "/state.sqlite") == 0o600)
        try reopened.close()
    }

    /// Secrets and job payloads are sealed with the key file: the database's bytes (WAL
    /// included) hold neither; the store opens them again; another key does not; rows an
    /// older conductor wrote in the clear are sealed when the store opens.
    @Test func secretsAndJobPayloadsAreSealedAtRest() async throws {
        let dir = try StateTestDirectory()
        let state = dir.url.path + "/state"
        let database = state + "/state.sqlite"
        let password = "pw-\(UUID().uuidString)"
        func fileBytes() -> String {
            [database, database + "-wal"].compactMap { FileManager.default.contents(atPath: $0) }.map { String(decoding: $0, as: UTF8.self) }
                .joined()
        }
        do {
            let store = try SQLiteStateStore(path: database)
            let generation = try await store.recordGeneration(
                deployment: "shop", environment: "prod", document: "{}", documentHash: "h", actor: stateTestActor)
            _ = try await store.secret(deployment: "shop", environment: "prod", name: "db_password", actor: stateTestActor, generate: { password })
            let instance = try await store.recordInstanceIntent(generationID: generation.id, member: "web", provider: "local", actor: stateTestActor)
            _ = try await store.recordJobIntent(
                instanceID: instance.id, name: "configure", payload: .map(["db_password": .string(password)]), actor: stateTestActor)
            #expect(!fileBytes().contains(password))
            let key = try #require(FileManager.default.attributesOfItem(atPath: state + "/state.key")[.posixPermissions] as? NSNumber)
            #expect(key.intValue == 0o600)
            try store.close()
        }
        do {
            let store = try SQLiteStateStore(path: database)
            let secret = try await store.secret(deployment: "shop", environment: "prod", name: "db_password", actor: stateTestActor, generate: { "other" })
            #expect(secret.value == password)
            let instance = try #require(try await store.status(deployment: "shop", environment: "prod")?.instances.first)
            #expect(instance.jobs.first?.payload[path: "db_password"]?.stringValue == password)
            try store.close()
        }
        // Another key: the error says so; nothing is read as garbage.
        var options = StateStoreOptions()
        options.keyFile = dir.url.path + "/other.key"
        let foreign = try SQLiteStateStore(path: database, options: options)
        await #expect(throws: StateStoreError.self) {
            _ = try await foreign.secret(deployment: "shop", environment: "prod", name: "db_password", actor: stateTestActor, generate: { "x" })
        }
        try foreign.close()
        // A row written in the clear (an older conductor): sealed at the next open.
        let queue = try DatabaseQueue(path: database)
        try await queue.write { db in try db.execute(sql: "UPDATE secret SET value = ? WHERE name = 'db_password'", arguments: [password]) }
        try queue.close()
        let upgraded = try SQLiteStateStore(path: database)
        #expect(try await upgraded.secret(deployment: "shop", environment: "prod", name: "db_password", actor: stateTestActor, generate: { "x" }).value == password)
        try upgraded.close()
        let sealedRow = try DatabaseQueue(path: database)
        let stored = try await sealedRow.read { db in try String.fetchOne(db, sql: "SELECT value FROM secret WHERE name = 'db_password'") }
        #expect(stored?.hasPrefix("sealed:v1:") == true)
        try sealedRow.close()
    }

    @Test func refusesAFileWrittenByANewerConductor() async throws {
        let dir = try StateTestDirectory()
        try SQLiteStateStore(path: dir.databasePath).close()
        let queue = try DatabaseQueue(path: dir.databasePath)
        try await queue.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-future')") }
        try queue.close()
        #expect {
            try SQLiteStateStore(path: dir.databasePath)
        } throws: { error in
            (error as? StateStoreError)?.code == .schema
        }
    }

    @Test(arguments: StoreKind.available) func instanceAndJobIntentsAreIdempotent(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        let store = try await bed.open(stateTestOptions(clock: StateTestClock()))
        let generation = try await store.recordGeneration(
            deployment: "shop", environment: "prod", document: "instances: {}", documentHash: "h1", actor: stateTestActor)

        let first = try await store.recordInstanceIntent(
            generationID: generation.id, member: "web[0]", provider: "local", actor: stateTestActor)
        let again = try await store.recordInstanceIntent(
            generationID: generation.id, member: "web[0]", provider: "local", actor: stateTestActor)
        #expect(again.id == first.id)
        #expect(again.state == .recorded)

        try await store.transitionInstance(first.id, to: .starting, providerHandle: "4242", address: nil, reason: nil, actor: stateTestActor)
        let afterStart = try await store.recordInstanceIntent(
            generationID: generation.id, member: "web[0]", provider: "local", actor: stateTestActor)
        #expect(afterStart.id == first.id)
        #expect(afterStart.state == .starting)
        #expect(afterStart.providerHandle == "4242")

        await _ = expectStateError(.conflict) {
            _ = try await store.recordInstanceIntent(
                generationID: generation.id, member: "web[0]", provider: "ec2", actor: stateTestActor)
        }

        let job = try await store.recordJobIntent(
            instanceID: first.id, name: "nginx", payload: .map(["port": .int(80)]), actor: stateTestActor)
        let jobAgain = try await store.recordJobIntent(
            instanceID: first.id, name: "nginx", payload: .map(["port": .int(8080)]), actor: stateTestActor)
        #expect(jobAgain.id == job.id)
        #expect(jobAgain.payload == .map(["port": .int(80)]))

        #expect(try await bed.count("SELECT COUNT(*) FROM instance") == 1)
        #expect(try await bed.count("SELECT COUNT(*) FROM job") == 1)
        #expect(try await bed.count("SELECT COUNT(*) FROM audit WHERE action = 'instance.record'") == 1)
        #expect(try await bed.count("SELECT COUNT(*) FROM audit WHERE action = 'job.record'") == 1)
        try await bed.close(store)
        await bed.dispose()
    }

    @Test(arguments: StoreKind.available) func invalidTransitionsAreRefusedAndLeaveNoTrace(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        let store = try await bed.open(stateTestOptions(clock: StateTestClock()))
        let generation = try await store.recordGeneration(
            deployment: "shop", environment: "prod", document: "d", documentHash: "h", actor: stateTestActor)
        let instance = try await store.recordInstanceIntent(
            generationID: generation.id, member: "db[0]", provider: "local", actor: stateTestActor)

        await _ = expectStateError(.invalidTransition) {
            try await store.transitionInstance(instance.id, to: .configured, providerHandle: nil, address: nil, reason: nil, actor: stateTestActor)
        }
        for state in [InstanceState.starting, .started, .configuring, .configured] {
            try await store.transitionInstance(instance.id, to: state, providerHandle: nil, address: "127.0.0.2", reason: nil, actor: stateTestActor)
        }
        let error = await expectStateError(.invalidTransition) {
            try await store.transitionInstance(instance.id, to: .starting, providerHandle: nil, address: nil, reason: nil, actor: stateTestActor)
        }
        #expect(error?.message.contains("configured to starting") == true)
        #expect(try await store.instance(instance.id)?.state == .configured)
        #expect(try await bed.count("SELECT COUNT(*) FROM audit WHERE action = 'instance.transition'") == 4)

        try await store.transitionInstance(instance.id, to: .terminated, providerHandle: nil, address: nil, reason: nil, actor: stateTestActor)
        await _ = expectStateError(.invalidTransition) {
            try await store.transitionInstance(instance.id, to: .failed, providerHandle: nil, address: nil, reason: "late", actor: stateTestActor)
        }

        let other = try await store.recordInstanceIntent(
            generationID: generation.id, member: "db[1]", provider: "local", actor: stateTestActor)
        let job = try await store.recordJobIntent(instanceID: other.id, name: "mysql", payload: .null, actor: stateTestActor)
        await _ = expectStateError(.invalidTransition) {
            try await store.transitionJob(job.id, to: .succeeded, result: nil, actor: stateTestActor)
        }
        try await store.transitionJob(job.id, to: .sent, result: nil, actor: stateTestActor)
        try await store.transitionJob(job.id, to: .sent, result: nil, actor: stateTestActor)
        let done = try await store.transitionJob(job.id, to: .succeeded, result: .map(["exit": .int(0)]), actor: stateTestActor)
        #expect(done.result == .map(["exit": .int(0)]))
        await _ = expectStateError(.invalidTransition) {
            try await store.transitionJob(job.id, to: .sent, result: nil, actor: stateTestActor)
        }
        #expect(try await store.jobs(instanceID: other.id).first?.state == .succeeded)
        try await bed.close(store)
        await bed.dispose()
    }

    /// Enforced by the database (SQLite triggers, a plpgsql trigger), not only by the API:
    /// plain SQL from another connection cannot change or remove an entry either.
    @Test(arguments: StoreKind.available) func auditTrailIsAppendOnly(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        let store = try await bed.open(stateTestOptions(clock: StateTestClock()))
        try await store.appendAudit(
            actor: .amqpUser("alice"), action: "launch.refused", subject: "deployment:shop@prod", outcome: .refused,
            deployment: "shop", environment: "prod", detail: .map(["why": .string("no permission")]))
        let trail = try await store.auditTrail(deployment: "shop", environment: "prod", limit: 10)
        #expect(trail.count == 1)
        #expect(trail.first?.actor == .amqpUser("alice"))
        #expect(trail.first?.detail == .map(["why": .string("no permission")]))

        for sql in ["UPDATE audit SET outcome = 'succeeded'", "DELETE FROM audit"] + (kind == .postgres ? ["TRUNCATE audit"] : []) {
            await #expect(throws: (any Error).self, "\(sql)") { try await bed.execute(sql) }
        }
        if kind == .postgres {
            // The refusal names why.
            do {
                try await bed.execute("DELETE FROM audit")
            } catch let error as PSQLError {
                #expect(error.serverInfo?[.message] == "the audit trail is append-only")
            }
        }
        #expect(try await bed.count("SELECT COUNT(*) FROM audit WHERE outcome = 'refused'") == 1)
        try await bed.close(store)
        await bed.dispose()
    }

    @Test(arguments: StoreKind.available) func secretsAreGeneratedOnceAndNeverShown(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        let generated = StateTestCounter()
        let generate: @Sendable () -> String = {
            generated.increment()
            return "s3cr3t-\(generated.value)"
        }
        do {
            let store = try await bed.open(stateTestOptions(clock: StateTestClock()))
            let first = try await store.secret(deployment: "shop", environment: "prod", name: "db_password", actor: stateTestActor, generate: generate)
            let second = try await store.secret(deployment: "shop", environment: "prod", name: "db_password", actor: stateTestActor, generate: generate)
            #expect(first.value == "s3cr3t-1")
            #expect(second.value == first.value)
            let staging = try await store.secret(deployment: "shop", environment: "staging", name: "db_password", actor: stateTestActor, generate: generate)
            #expect(staging.value == "s3cr3t-2")

            #expect(!"\(first)".contains("s3cr3t"))
            #expect(!String(reflecting: first).contains("s3cr3t"))
            let json = String(decoding: try JSONEncoder().encode(first), as: UTF8.self)
            #expect(!json.contains("s3cr3t"))
            #expect(json.contains(SecretRecord.mask))
            let trail = try await store.auditTrail(deployment: nil, environment: nil, limit: 100)
            #expect(trail.filter { $0.action == "secret.generate" }.count == 2)
            #expect(!trail.contains { (try? JSONText.encode($0.detail ?? .null))?.contains("s3cr3t") ?? false })
            try await bed.close(store)
        }
        let reopened = try await bed.open(stateTestOptions(clock: StateTestClock()))
        let afterRestart = try await reopened.secret(deployment: "shop", environment: "prod", name: "db_password", actor: stateTestActor, generate: generate)
        #expect(afterRestart.value == "s3cr3t-1")
        #expect(generated.value == 2)
        try await bed.close(reopened)
        await bed.dispose()
    }

    @Test(arguments: StoreKind.available) func factsAreUpsertedPerInstance(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        let store = try await bed.open(stateTestOptions(clock: StateTestClock()))
        let generation = try await store.recordGeneration(
            deployment: "shop", environment: "prod", document: "d", documentHash: "h", actor: stateTestActor)
        let db = try await store.recordInstanceIntent(generationID: generation.id, member: "db[0]", provider: "local", actor: stateTestActor)
        try await store.recordFact(instanceID: db.id, name: "ipaddress", value: .string("127.0.0.2"))
        try await store.recordFact(instanceID: db.id, name: "ipaddress", value: .string("127.0.0.3"))
        try await store.recordFact(instanceID: db.id, name: "mysql.port", value: .int(3306))
        let facts = try await store.facts(instanceID: db.id)
        #expect(facts.map(\.name) == ["ipaddress", "mysql.port"])
        #expect(facts.first?.value == .string("127.0.0.3"))
        try await bed.close(store)
        await bed.dispose()
    }
}
