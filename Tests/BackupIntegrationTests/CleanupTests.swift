import BackupCore
import BackupKit
import BackupStorage
import Foundation
import Logging
import TestSupport
import Testing

/// Backups of many ages for cleanup to judge: one real backup made by the real backup-job, and copies of it under
/// older names (an archive renamed is still a backup aged by its name), some verified, some that failed
/// verification, some never verified, safety and labelled ones, as a drill, a rollback or an operator marks them.
struct AgedBackups {
    let app: ApplicationFixture
    let prefix = "visual_backup"
    /// The real backup's archive, in the volume.
    let real: String

    /// Makes the real backup (with `environment`, e.g. a bucket beside the volume).
    static func make(_ app: ApplicationFixture, environment: [String: String] = [:]) async throws -> AgedBackups {
        let backup = try await app.run("backup-job", environment: environment)
        try #require(backup.succeeded, "\(backup)")
        let files = try app.storeFiles()
        let real = try #require(files.first { $0.hasSuffix(".tar.gz") && files.contains($0 + ".json") })
        return AgedBackups(app: app, real: real)
    }

    /// The archive name of a backup `days` old (of `prefix`).
    func name(days: Double, prefix: String? = nil) -> String {
        BackupName(prefix: prefix ?? self.prefix, date: Date().addingTimeInterval(-days * 86_400), compression: .gzip)
            .fileName
    }

    /// The real backup's manifest, edited: `verified` (nil: none), `kind`, `label`, and the archive's name.
    func manifest(for name: String, verified: Bool?, kind: String? = nil, label: String? = nil) throws -> Data {
        let data = try Data(contentsOf: app.backupDirectory.appendingPathComponent(real + ".json"))
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        object["verified"] =
            verified.map { ["at": "2025-01-01T00:00:00Z", "ok": $0, "detail": "drill"] as [String: Any] } ?? NSNull()
        if let kind { object["kind"] = kind }
        if let label { object["label"] = label }
        var archive = try #require(object["archive"] as? [String: Any])
        archive["name"] = name
        object["archive"] = archive
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }

    /// A copy of the real backup as `name` in the volume; `manifest: false` leaves the archive alone (an
    /// interrupted run), `archive: false` the manifest alone (an archive removed by the runbook's `find -delete`).
    @discardableResult
    func copy(
        as name: String, verified: Bool? = true, kind: String? = nil, label: String? = nil, archive: Bool = true,
        manifest: Bool = true
    ) throws -> String {
        let folder = app.backupDirectory
        if archive {
            try FileManager.default.copyItem(
                at: folder.appendingPathComponent(real), to: folder.appendingPathComponent(name))
        }
        if manifest {
            try self.manifest(for: name, verified: verified, kind: kind, label: label).write(
                to: folder.appendingPathComponent(name + ".json"))
        }
        return name
    }

    /// The same copy in a bucket.
    func copy(as name: String, into bucket: any Storage, verified: Bool? = true, manifest: Bool = true) throws {
        let bytes = try Data(contentsOf: app.backupDirectory.appendingPathComponent(real))
        let writer = try bucket.makeWriter(key: name)
        try bytes.withUnsafeBytes { try writer.write($0) }
        try writer.commit {}
        if manifest {
            try bucket.put(key: name + ".json", data: Array(try self.manifest(for: name, verified: verified)))
        }
    }

    /// The volume store as the admin API opens it, for the use cases called in process.
    func volumeStores() throws -> Stores {
        let volume = try VolumeStorage(root: app.backupDirectory.path)
        return Stores(primary: volume, staging: volume.staging)
    }

    /// The real backup's manifest as it is now in the volume.
    func realManifest() throws -> Manifest {
        try ContingencyJSON.decoder().decode(
            Manifest.self, from: Data(contentsOf: app.backupDirectory.appendingPathComponent(real + ".json")))
    }
}

@Suite("cleanup-job: retention and leftovers", .serialized)
struct CleanupTests {
    static let logger = Logger(label: "cleanup-tests")

    @Test(
        "exactly the expected backups go; pinned, recent, safety-within-retention, other prefixes and shell-script archives stay; a dry run deletes nothing"
    )
    func retentionOnVolume() async throws {
        try await ApplicationFixture.with(uploadFiles: 5) { app in
            // An archive of the runbook's shell script: no manifest, a backup aged by its name (recent here).
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("bench/runbook-backup.sh").path
            let legacy = try await ProcessRunner.run(
                "bash", [script], environment: app.environment(["PATH": "\(app.server.binDir.path):/usr/bin:/bin"]))
            try #require(legacy.succeeded, "\(legacy)")
            let shellArchive = try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") })
            let shellAged = BackupName(
                prefix: "visual_backup", date: Date().addingTimeInterval(-5 * 86_400), compression: .gzip
            ).fileName
            try FileManager.default.moveItem(
                at: app.backupDirectory.appendingPathComponent(shellArchive),
                to: app.backupDirectory.appendingPathComponent(shellAged))
            let backups = try await AgedBackups.make(app)

            let recentA = try backups.copy(as: backups.name(days: 2))
            let recentB = try backups.copy(as: backups.name(days: 3))
            let unverifiedRecent = try backups.copy(as: backups.name(days: 10), verified: nil)
            let oldVerified = try backups.copy(as: backups.name(days: 40))
            let oldFailed = try backups.copy(as: backups.name(days: 45), verified: false)
            let oldUnverified = try backups.copy(as: backups.name(days: 50), verified: nil)
            let oldPinned = try backups.copy(as: backups.name(days: 60))
            let oldLabelled = try backups.copy(as: backups.name(days: 70), label: "investigation")
            let youngSafety = try backups.copy(as: backups.name(days: 3.5), verified: nil, kind: "safety")
            let oldSafety = try backups.copy(as: backups.name(days: 20), verified: nil, kind: "safety")
            let otherPrefix = try backups.copy(as: backups.name(days: 90, prefix: "other_backup"))
            // Interrupted runs: an archive of ours without a manifest (old, and one within the grace period), and a
            // manifest whose archive is gone.
            let orphanArchive = try backups.copy(as: backups.name(days: 5.5), manifest: false)
            let youngOrphan = try backups.copy(as: backups.name(days: 0.01), manifest: false)
            let orphanManifest = try backups.copy(as: backups.name(days: 6), archive: false)
            try BackupPins(stores: try backups.volumeStores(), prefix: "visual_backup", logger: Self.logger)
                .pin(oldPinned, by: "operator", reason: "before the 2.0 migration")

            let before = try app.storeFiles()
            let dry = try await app.run("cleanup-job", ["--dry-run"])
            #expect(dry.succeeded, "\(dry)")
            #expect(try app.storeFiles() == before, "a dry run deletes nothing")
            for gone in [oldFailed, oldUnverified, oldLabelled, oldSafety] {
                #expect(dry.stdout.contains("delete  \(gone)"), "\(gone): \(dry.stdout)")
            }
            // The dry run does not verify the newest backup, so the 40-day-old verified one is still the third
            // newest verified backup; the real run verifies the newest first, and then it goes.
            #expect(
                dry.stdout.contains(
                    "keep    \(oldVerified)  (one of the 3 newest verified backups (BACKUP_KEEP_MIN), #3)"),
                "\(dry.stdout)")
            #expect(dry.stdout.contains("keep    \(oldPinned)  (pinned)"), "\(dry.stdout)")
            #expect(dry.stdout.contains("collect \(orphanArchive)"), "\(dry.stdout)")
            #expect(dry.stdout.contains("leave   \(youngOrphan)"), "\(dry.stdout)")
            #expect(try backups.realManifest().verified == nil, "a dry run verifies nothing")

            let run = try await app.run("cleanup-job")
            #expect(run.succeeded, "\(run)")
            let log = run.stdout + run.stderr
            #expect(log.contains("Verifying \(backups.real), the newest backup, before pruning anything"), "\(log)")
            #expect(
                try backups.realManifest().verified?.ok == true, "cleanup recorded its verification in the manifest")
            #expect(log.contains("Pruned 5 out of 12 backups as they were older than 30 days"), "\(log)")
            #expect(log.contains("[Backup] Cleanup completed: 5 old backups removed"), "\(log)")

            let kept = [backups.real, recentA, recentB, unverifiedRecent, oldPinned, youngSafety]
            var expected = kept.flatMap { [$0, $0 + ".json"] } + [shellAged, youngOrphan]
            expected += [otherPrefix, otherPrefix + ".json"]
            #expect(try app.storeFiles() == expected.sorted())
            _ = orphanManifest

            // Nothing left to do: a second run deletes nothing.
            let again = try await app.run("cleanup-job")
            #expect(again.succeeded, "\(again)")
            #expect((again.stdout + again.stderr).contains("Cleanup completed: 0 old backups removed"), "\(again)")
            #expect(try app.storeFiles() == expected.sorted())
        }
    }

    @Test("failing backups never make retention delete the last good ones; KEEP_MIN keeps verified backups however old")
    func failingBackupsKeepTheGoodOnes() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let backups = try await AgedBackups.make(app)
            // The newest backup fails verification: its archive is damaged after its manifest was written.
            let handle = try FileHandle(forUpdating: app.backupDirectory.appendingPathComponent(backups.real))
            try handle.seek(toOffset: 100)
            try handle.write(contentsOf: Data(repeating: 0x55, count: 64))
            try handle.close()
            let failing = [
                try backups.copy(as: backups.name(days: 1), verified: false),
                try backups.copy(as: backups.name(days: 2), verified: false),
            ]
            let good = [try backups.copy(as: backups.name(days: 100)), try backups.copy(as: backups.name(days: 120))]
            let older = try backups.copy(as: backups.name(days: 130), verified: nil)

            let run = try await app.run("cleanup-job", environment: ["BACKUP_KEEP_MIN": "1"])
            #expect(run.succeeded, "\(run)")
            #expect(try backups.realManifest().verified?.ok == false, "the failed verification is recorded")
            let files = try app.storeFiles()
            // The newest verified (100 days) stays as KEEP_MIN; 120 and 130 go only because it is newer and verified.
            #expect(files.contains(good[0]) && !files.contains(good[1]) && !files.contains(older), "\(files)")
            #expect(files.contains(backups.real) && failing.allSatisfy(files.contains), "\(files)")
        }
    }

    @Test(
        "volume and bucket: a backup goes from both stores; another install's prefix, pins and open uploads of others stay; the per-store brake holds"
    )
    func volumeAndBucket() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            try await TestBucket.with { bucket in
                let environment = bucket.environment(app: app, volume: true)
                let backups = try await AgedBackups.make(app, environment: environment)
                let storage = try bucket.storage()
                #expect(try bucket.objects().contains(backups.real))
                // Only in the bucket, and then in both: old backups, verified.
                let old = [backups.name(days: 40), backups.name(days: 50)]
                for name in old {
                    try backups.copy(as: name)
                    try backups.copy(as: name, into: storage)
                }
                let foreign = backups.name(days: 90, prefix: "other_backup")
                try backups.copy(as: foreign, into: storage)

                // The brake: with the newest backup missing from the bucket (a failed copy) and KEEP_MIN=1, the plan
                // would empty the bucket: refused, nothing deleted anywhere.
                try storage.delete(key: backups.real + ".json", ifMatch: nil)
                try storage.delete(key: backups.real, ifMatch: nil)
                let beforeVolume = try app.storeFiles()
                let beforeBucket = try bucket.objects()
                let refused = try await app.run(
                    "cleanup-job", environment: environment.merging(["BACKUP_KEEP_MIN": "1"]) { $1 })
                #expect(refused.status == 1, "\(refused)")
                #expect(
                    refused.stderr.contains("would delete all 2 existing backups in \(bucket.url). Refusing"),
                    "\(refused)")
                #expect(try app.storeFiles() == beforeVolume)
                #expect(try bucket.objects() == beforeBucket)

                // With the bucket's copy back, both old backups go from both stores; an open upload of ours is
                // aborted, another install's is not.
                try backups.copy(as: backups.real, into: storage)
                let ours = try storage.makeWriter(key: backups.name(days: 0.5))
                let theirs = try storage.makeWriter(key: backups.name(days: 0.5, prefix: "other_backup"))
                let part = [UInt8](repeating: 7, count: 11 << 20)
                for writer in [ours, theirs] { try part.withUnsafeBytes { try writer.write($0) } }
                #expect(try bucket.moto.openMultipartUploads(bucket: bucket.name) == 2)
                let run = try await app.run(
                    "cleanup-job", environment: environment.merging(["BACKUP_KEEP_MIN": "1"]) { $1 })
                #expect(run.succeeded, "\(run)")
                #expect(try bucket.moto.openMultipartUploads(bucket: bucket.name) == 1)
                theirs.abort()
                withExtendedLifetime(ours) {}
                for name in old {
                    #expect(try !app.storeFiles().contains(name))
                    #expect(try !bucket.objects().contains(name))
                    #expect(try !bucket.objects().contains(name + ".json"))
                }
                #expect(
                    try bucket.objects() == [backups.real, backups.real + ".json", foreign, foreign + ".json"].sorted())
                #expect(try app.storeFiles() == [backups.real, backups.real + ".json"])
            }
        }
    }

    @Test("an encrypted newest backup: without its key cleanup goes on as if it were unverified; with it, it is verified")
    func encryptedNewest() async throws {
        try await ApplicationFixture.with(uploadFiles: 2) { app in
            let backup = try await app.run("backup-job", environment: ["AGE_PASSPHRASE": "correct horse battery"])
            try #require(backup.succeeded, "\(backup)")
            let archive = try #require(try app.storeFiles().first { $0.hasSuffix(".age") })
            let manifest = { () throws -> Manifest in
                try ContingencyJSON.decoder().decode(
                    Manifest.self, from: Data(contentsOf: app.backupDirectory.appendingPathComponent(archive + ".json")))
            }
            let keyless = try await app.run("cleanup-job")
            #expect(keyless.succeeded, "\(keyless)")
            #expect((keyless.stdout + keyless.stderr).contains("retention goes on as if it were unverified"), "\(keyless)")
            #expect(try manifest().verified == nil)
            let keyed = try await app.run("cleanup-job", environment: ["AGE_PASSPHRASE": "correct horse battery"])
            #expect(keyed.succeeded, "\(keyed)")
            #expect(try manifest().verified?.ok == true)
        }
    }

    @Test(
        "a backup-job killed between its archive and its manifest leaves an archive that cleanup collects once past CLEANUP_GRACE"
    )
    func interruptedBackupCollected() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let backups = try await AgedBackups.make(app)
            let job = try app.launch("backup-job", environment: ["CONTINGENCY_FAILPOINT": "publish"])
            try await eventually("backup-job to stop between its archive and its manifest") { job.isStopped }
            job.kill(SIGKILL)
            _ = try await job.waitForExit(timeout: .seconds(30))
            let orphan = try #require(try app.storeFiles().first { $0 != backups.real && !$0.hasSuffix(".json") })
            #expect(try !app.storeFiles().contains(orphan + ".json"))

            // Within the grace period it is left (the dead job's lease expires first: LOCK_TTL=3s).
            let early = try await app.run("cleanup-job", environment: ["LOCK_TIMEOUT": "30s"])
            #expect(early.succeeded, "\(early)")
            #expect(try app.storeFiles().contains(orphan))
            let late = try await app.run("cleanup-job", environment: ["CLEANUP_GRACE": "0s"])
            #expect(late.succeeded, "\(late)")
            #expect(late.stdout.contains("Removed \(orphan) from"), "\(late)")
            #expect(try app.storeFiles() == [backups.real, backups.real + ".json"])
            #expect(app.temporaryFiles().isEmpty)
        }
    }

    @Test(
        "databases a killed restore left, and copies kept from before a restore older than the newest backup, are dropped; safety, unmarked and newer ones stay"
    )
    func databaseLeftovers() async throws {
        try await ApplicationFixture.with(uploadFiles: 2) { app in
            _ = try await AgedBackups.make(app)
            func stamp(_ offset: TimeInterval) -> String {
                BackupName.formatTimestamp(Date().addingTimeInterval(offset)).replacingOccurrences(of: "-", with: "")
                    .replacingOccurrences(of: "_", with: "")
            }
            let databases: [(String, String?)] = [
                ("visual_db_restore_deadbeef", "contingency: a restore in progress for visual_db"),
                ("visual_db_before_restore_\(stamp(-3600))", "contingency: visual_db as it was before a restore"),
                ("visual_db_before_restore_\(stamp(3600))", "contingency: visual_db as it was before a restore"),
                (
                    "visual_db_before_restore_\(stamp(-7200))",
                    "contingency: visual_db replaced by a rollback, kept for its safety backup"
                ),
                ("visual_db_restore_cafebabe", nil),
                ("other_db_restore_0badf00d", "contingency: a restore in progress for other_db"),
            ]
            for (name, comment) in databases {
                try await app.server.createDatabase(name)
                if let comment { _ = try await app.server.psql("COMMENT ON DATABASE \"\(name)\" IS '\(comment)'") }
            }
            let dry = try await app.run("cleanup-job", ["--dry-run"])
            #expect(dry.succeeded, "\(dry)")
            #expect(dry.stdout.contains("drop    database visual_db_restore_deadbeef"), "\(dry.stdout)")
            let run = try await app.run("cleanup-job")
            #expect(run.succeeded, "\(run)")
            let left = try await app.server.psql(
                "SELECT datname FROM pg_database WHERE datname LIKE '%restore%' ORDER BY datname")
            let expected = [databases[2].0, databases[3].0, databases[4].0, databases[5].0].sorted()
            #expect(left.split(separator: "\n").map(String.init) == expected, "\(run)")
            #expect(
                try await app.server.psql("SELECT count(*) FROM users", database: app.database) != "0",
                "the application's database is untouched")
        }
    }

    @Test(
        "cleanup waits for no restore: locked out while one holds the store; the API's override returns names and reasons; --loop runs on CLEANUP_SCHEDULE"
    )
    func leaseOverrideAndLoop() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let backups = try await AgedBackups.make(app)
            let recent = [try backups.copy(as: backups.name(days: 2)), try backups.copy(as: backups.name(days: 3))]
            let older = [try backups.copy(as: backups.name(days: 10)), try backups.copy(as: backups.name(days: 40))]
            let stores = try backups.volumeStores()

            // A restore holds the store's lease (as RestoreJob takes it): cleanup touches nothing and exits 11.
            let before = try app.storeFiles()
            let restoreLease = try await Lease.acquire(
                BackupJob.lockName, storage: stores.primary, job: "restore-job", ttl: 30, timeout: 0)
            let locked = try await app.run("cleanup-job")
            restoreLease.release()
            #expect(locked.status == 11, "\(locked)")
            #expect(locked.stderr.contains("locked by restore-job"), "\(locked)")
            #expect(try app.storeFiles() == before)
            #expect(try backups.realManifest().verified == nil)

            // The admin API's call: the same use case with retentionDays overridden.
            let values = ConfigurationValues(environment: app.environment(), readFile: { _ in "" })
            let job = CleanupJob(
                configuration: try CleanupConfiguration.load(values), stores: stores, logger: Self.logger)
            await #expect(throws: ContingencyError.self) { try await job.run(retentionDays: 0) }
            let result = try await job.run(retentionDays: 7)
            #expect(result.deleted == older)
            #expect(result.deletedCount == 2 && result.retentionDays == 7 && result.refusal == nil)
            #expect(result.verifiedBackup == backups.real && result.verification?.ok == true)
            #expect(result.kept.map(\.fileName) == [backups.real] + recent)
            #expect(result.kept.allSatisfy { $0.reason.contains("newest verified") }, "\(result.kept)")
            #expect(result.message == "Cleanup completed: 2 old backups removed")
            let metrics = try String(
                contentsOf: app.backupDirectory.appendingPathComponent(".contingency/metrics/cleanup.prom"),
                encoding: .utf8)
            #expect(
                metrics.contains("contingency_cleanup_deleted 2") && metrics.contains("contingency_cleanup_success 1"),
                "\(metrics)")
            #expect(try app.storeFiles() == ([backups.real] + recent).flatMap { [$0, $0 + ".json"] }.sorted())

            // --loop: an old backup added later goes at the next scheduled run; SIGTERM while idle exits 0.
            let late = try backups.copy(as: backups.name(days: 50))
            let loop = try app.launch("cleanup-job", ["--loop"], environment: ["CLEANUP_SCHEDULE": "3s"])
            try await eventually(timeout: .seconds(60), "the loop to remove \(late)") {
                try !app.storeFiles().contains(late)
                    && loop.stdoutSoFar.contains("Scheduled cleanup completed successfully")
            }
            try await eventually(timeout: .seconds(60), "the loop to be idle with seconds to spare") {
                LoopOutput.isIdle(loop.stdoutSoFar, marker: "Next cleanup at")
            }
            loop.kill(SIGTERM)
            let ended = try await loop.waitForExit(timeout: .seconds(30))
            #expect(ended.status == 0, "\(ended)")
        }
    }

    @Test(
        "deletion: invalid names 400, unknown 404, pinned, the only verified one and a restore holding the store 409; a good delete goes from the volume and the bucket"
    )
    func deletion() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            try await TestBucket.with { bucket in
                let backups = try await AgedBackups.make(app, environment: bucket.environment(app: app, volume: true))
                let bucketStorage = try bucket.storage()
                let volume = try VolumeStorage(root: app.backupDirectory.path)
                let stores = Stores(primary: volume, copy: bucketStorage, staging: volume.staging)
                let store = StoreConfiguration(
                    backupDirectory: app.backupDirectory.path, prefix: "visual_backup", lockTTLSeconds: 5)
                let deletion = BackupDeletion(store: store, stores: stores, logger: Self.logger)
                let pins = BackupPins(stores: stores, prefix: "visual_backup", logger: Self.logger)
                let verified = try backups.copy(as: backups.name(days: 3))
                let pinned = try backups.copy(as: backups.name(days: 4))
                try backups.copy(as: pinned, into: bucketStorage)
                try pins.pin(pinned, by: "127.0.0.1")
                #expect(try pins.list().map(\.fileName) == [pinned])
                let before = (try app.storeFiles(), try bucket.objects())

                func refusal(_ name: String) async -> BackupActionError.Kind? {
                    do {
                        _ = try await deletion.delete(name, by: "test")
                        return nil
                    } catch let error as BackupActionError {
                        return error.kind
                    } catch {
                        Issue.record("\(name): \(error)")
                        return nil
                    }
                }
                let hostile = [
                    "", "../\(verified)", "/etc/passwd", "\(verified)/..", "..%2F\(verified)", verified + ".json",
                    "other_backup_2025-01-15_14-30-00.tar.gz", "visual_backup_2025-01-15_14-30-00.tar.gz\0",
                    "visual_backup_2025-02-30_00-00-00.tar.gz",
                    ".contingency/pins/\(pinned).json", String(repeating: "a", count: 5000),
                ]
                for name in hostile { #expect(await refusal(name) == .invalidName, "\(name.debugDescription)") }
                #expect(await refusal(backups.name(days: 400)) == .notFound)
                #expect(await refusal(pinned) == .pinned)
                #expect(throws: BackupActionError.self) { try pins.pin(backups.name(days: 401), by: "x") }
                #expect(throws: BackupActionError.self) { try pins.pin("../x", by: "x") }

                // A restore holds the store's lease (as RestoreJob takes it): the deletion is refused, not queued.
                let restoreLease = try await Lease.acquire(
                    BackupJob.lockName, storage: volume, job: "restore-job", ttl: 30, timeout: 0)
                do {
                    _ = try await deletion.delete(verified, by: "test")
                    Issue.record("deleted while a restore holds the store")
                } catch let error as BackupActionError {
                    #expect(error.kind == .inUse)
                    #expect(error.message.contains("restore-job"), "\(error)")
                }
                restoreLease.release()
                #expect((try app.storeFiles(), try bucket.objects()) == before, "nothing was touched by a refusal")

                // The only verified backup: the real one is unverified, the pinned one is verified but pinned, so
                // after unpinning and deleting it `verified` is the last one.
                #expect(try pins.unpin(pinned, by: "test"))
                let removed = try await deletion.delete(pinned, by: "test")
                #expect(removed.stores == [volume.description, bucketStorage.description])
                #expect(try !app.storeFiles().contains(pinned) && !app.storeFiles().contains(pinned + ".json"))
                #expect(try !bucket.objects().contains(pinned) && !bucket.objects().contains(pinned + ".json"))
                #expect(await refusal(verified) == .lastVerified)
                // An unverified backup can go.
                let real = try await deletion.delete(backups.real, by: "test")
                #expect(real.stores.count == 2)
                #expect(try app.storeFiles() == [verified, verified + ".json"])
            }
        }
    }
}
