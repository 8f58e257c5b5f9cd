import Foundation
import Mesh
import PostgresNIO
import Testing

@testable import Conductor

/// What only the PostgreSQL store has to show: its migrations, its key check, its connection
/// errors; and what two coordinator processes racing on one state must get from either store.
@Suite("State store on PostgreSQL, and racing stores")
struct PostgresStateStoreTests {
    static var postgres: [StoreKind] { StoreKind.available.filter { $0 == .postgres } }

    /// Several stores record the same intent at once (coordinators replaying one launch): one
    /// instance id and one row, whichever store won.
    @Test(arguments: StoreKind.available) func racingIntentsRecordOneInstance(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        let clock = StateTestClock()
        var stores: [any CoordinatorStateStore] = []
        for _ in 0..<4 { stores.append(try await bed.open(stateTestOptions(clock: clock))) }
        let generation = try await stores[0].recordGeneration(
            deployment: "shop", environment: "prod", document: "d", documentHash: "h", actor: stateTestActor)
        let ids = try await withThrowingTaskGroup(of: UUID.self) { group in
            for store in stores {
                group.addTask {
                    try await store.recordInstanceIntent(generationID: generation.id, member: "web[0]", provider: "local", actor: stateTestActor).id
                }
            }
            var ids: Set<UUID> = []
            for try await id in group { ids.insert(id) }
            return ids
        }
        #expect(ids.count == 1)
        #expect(try await bed.count("SELECT COUNT(*) FROM instance") == 1)
        #expect(try await bed.count("SELECT COUNT(*) FROM audit WHERE action = 'instance.record'") == 1)
        for store in stores { try await bed.close(store) }
        await bed.dispose()
    }

    /// Two coordinators starting at once on an empty database: the migration runs once (the
    /// advisory lock), both stores work, and a reopened store finds the version recorded.
    @Test(arguments: postgres) func migrationsRunOnceWhenTwoStoresStartTogether(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        async let first = bed.location.open(stateDirectory: bed.directory.url.path, keyFile: bed.keyFile)
        async let second = bed.location.open(stateDirectory: bed.directory.url.path, keyFile: bed.keyFile)
        let stores = try await [first, second]
        #expect(try await bed.count("SELECT COUNT(*) FROM schema_version") == PostgresSchema.migrations.count)
        _ = try await stores[0].ensureDeployment("shop", environment: "prod", actor: stateTestActor)
        #expect(try await stores[1].deployment("shop", environment: "prod")?.status == .recorded)
        for store in stores { try await bed.close(store) }
        let reopened = try #require(try await bed.open() as? PostgresStateStore)
        #expect(try await reopened.appliedMigrations() == PostgresSchema.migrations.map(\.name))
        await reopened.close()
        await bed.dispose()
    }

    @Test(arguments: postgres) func refusesADatabaseMigratedByANewerConductor(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        try await bed.close(try await bed.open())
        try await bed.execute("INSERT INTO schema_version (version, name) VALUES (99, 'v99-future')")
        let error = await expectStateError(.schema) { _ = try await bed.open() }
        #expect(error?.message.contains("newer conductor") == true)
        await bed.dispose()
    }

    /// Secrets and job payloads are sealed in the database; the key is checked when the store
    /// opens: a missing key file is an error (never a new key), another key too.
    @Test(arguments: postgres) func secretsAreSealedAndTheKeyIsChecked(kind: StoreKind) async throws {
        let bed = try await StateTestBed(kind)
        let password = "pw-\(UUID().uuidString)"
        let store = try await bed.open()
        let generation = try await store.recordGeneration(deployment: "shop", environment: "prod", document: "{}", documentHash: "h", actor: stateTestActor)
        _ = try await store.secret(deployment: "shop", environment: "prod", name: "db_password", actor: stateTestActor, generate: { password })
        let instance = try await store.recordInstanceIntent(generationID: generation.id, member: "web", provider: "local", actor: stateTestActor)
        _ = try await store.recordJobIntent(instanceID: instance.id, name: "configure", payload: .map(["db_password": .string(password)]), actor: stateTestActor)
        try await bed.close(store)
        #expect(try await bed.count("SELECT COUNT(*) FROM secret WHERE value LIKE 'sealed:v1:%' AND value NOT LIKE '%\(password)%'") == 1)
        #expect(try await bed.count("SELECT COUNT(*) FROM job WHERE payload LIKE 'sealed:v1:%' AND payload NOT LIKE '%\(password)%'") == 1)

        let reopened = try await bed.open()
        #expect(try await reopened.secret(deployment: "shop", environment: "prod", name: "db_password", actor: stateTestActor, generate: { "x" }).value == password)
        #expect(try await reopened.jobs(instanceID: instance.id).first?.payload[path: "db_password"]?.stringValue == password)
        try await bed.close(reopened)

        let missing = bed.directory.url.path + "/elsewhere/state.key"
        let noKey = await expectStateError(.schema) { _ = try await bed.open(keyFile: missing) }
        #expect(noKey?.message.contains(missing) == true)
        #expect(!FileManager.default.fileExists(atPath: missing))
        let other = bed.directory.url.path + "/other.key"
        _ = try StateSeal(keyFile: other)
        let wrongKey = await expectStateError(.schema) { _ = try await bed.open(keyFile: other) }
        #expect(wrongKey?.message.contains("not the one") == true)
        await bed.dispose()
    }

    /// Refused, wrong password, unknown database: one line naming the server and the cause.
    @Test(arguments: postgres) func connectionErrorsNameTheServerAndTheCause(kind: StoreKind) async throws {
        let admin = try #require(StoreKind.postgresAdminURL)
        let directory = try StateTestDirectory()
        func failure(_ url: PostgresStateURL) async -> String {
            do {
                let store = try await PostgresStateStore.open(url, keyFile: directory.url.path + "/state.key", connectTimeout: .seconds(5))
                await store.close()
                return "opened"
            } catch {
                return "\(error)"
            }
        }
        var refused = admin
        refused.port = 1  // nothing listens on port 1
        let refusal = await failure(refused)
        #expect(refusal.contains("127.0.0.1:1") && refusal.contains("refused"), "\(refusal)")
        var wrongPassword = admin
        wrongPassword.password = "not-the-password"
        let denial = await failure(wrongPassword)
        #expect(denial.contains("\(admin.host):\(admin.port)") && denial.contains("password authentication failed"), "\(denial)")
        var unknown = admin
        unknown.database = "conductor_no_such_database"
        let absence = await failure(unknown)
        #expect(absence.contains("conductor_no_such_database") && absence.contains("does not exist"), "\(absence)")
        for message in [refusal, denial, absence] {
            #expect(!message.contains("\n") && !message.contains("not-the-password"), "\(message)")
        }
    }

    @Test func stateLocationsAreChosenFromTheValue() throws {
        #expect(try StateLocation(nil, stateDirectory: "/s") == .sqlite(path: "/s/state.sqlite"))
        #expect(try StateLocation("/d", stateDirectory: "/s") == .sqlite(path: "/d/state.sqlite"))
        #expect(try StateLocation("/d/x.sqlite", stateDirectory: "/s") == .sqlite(path: "/d/x.sqlite"))
        let url = try StateLocation("postgres://u:p%40ss@db.example:6000/state", stateDirectory: "/s")
        #expect(url == .postgres(PostgresStateURL(user: "u", password: "p@ss", host: "db.example", port: 6000, database: "state")))
        #expect(url.description == "postgresql://u@db.example:6000/state")
        #expect(throws: StateStoreError.self) { try StateLocation("postgresql://u@db.example", stateDirectory: "/s") }
        #expect(throws: StateStoreError.self) { try StateLocation("mysql://u@db/x", stateDirectory: "/s") }
    }
}
