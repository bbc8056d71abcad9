import BackupCore
import BackupInterop
import BackupKit
import BackupStorage
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A bucket on a real S3 server (moto, on 127.0.0.1, checking every request's signature), for the jobs.
struct TestBucket {
    let moto: MotoServer
    let name: String
    let prefix = "app"

    static func with<T>(
        isolation: isolated (any Actor)? = #isolation, _ body: (TestBucket) async throws -> T
    ) async throws -> T {
        try await MotoServer.with { moto in
            let bucket = TestBucket(moto: moto, name: "backups-\(UUID().uuidString.prefix(8).lowercased())")
            try moto.createBucket(bucket.name)
            return try await body(bucket)
        }
    }

    var url: String { "s3://\(name)/\(prefix)" }

    func configuration(endpoint: String? = nil) -> S3Configuration {
        S3Configuration(
            bucket: name, prefix: prefix, endpoint: endpoint ?? moto.endpoint, accessKeyID: moto.accessKeyID,
            secretAccessKey: moto.secretAccessKey, partSize: S3Configuration.minimumPartSize, stallTimeoutSeconds: 2, retries: 4)
    }

    func storage(endpoint: String? = nil) throws -> any Storage {
        try S3Storage.open(configuration(endpoint: endpoint), coordinating: false)
    }

    /// The jobs' settings for this bucket. Without `volume`, the bucket is the only store (BACKUP_DIR empty).
    func environment(app: ApplicationFixture, endpoint: String? = nil, volume: Bool = false) -> [String: String] {
        [
            "BACKUP_S3_URL": url, "S3_ENDPOINT": endpoint ?? moto.endpoint, "AWS_ACCESS_KEY_ID": moto.accessKeyID,
            "AWS_SECRET_ACCESS_KEY": moto.secretAccessKey, "AWS_REGION": "us-east-1", "S3_PART_SIZE": "5MiB",
            "S3_TIMEOUT": "2s", "S3_RETRIES": "4", "STAGING_DIR": app.root.appending("staging").path,
            "BACKUP_DIR": volume ? app.backupDirectory.path : "",
        ]
    }

    /// Top-level object names under the prefix (archives and manifests), sorted.
    func objects() throws -> [String] {
        try storage().list(folder: "").map(\.name).sorted()
    }
}

@Suite("S3 bucket store", .serialized)
struct BucketTests {
    @Test("the bucket store keeps the Storage contract, and leases and requests behave as on a volume")
    func contract() async throws {
        try await TestBucket.with { bucket in
            let storage = try S3Storage.open(bucket.configuration(), coordinating: true)
            try await StorageConformance.check(storage)
            try await CoordinationChecks.leaseSemantics(storage)
            try await CoordinationChecks.contenders(storage, rounds: 3)
            try await CoordinationChecks.requests(storage)
            #expect(try bucket.moto.openMultipartUploads(bucket: bucket.name) == 0)
        }
    }

    @Test("a multipart object streams in and out, and an aborted one leaves no upload open")
    func multipart() async throws {
        try await TestBucket.with { bucket in
            let storage = try bucket.storage()
            var generator = SystemRandomNumberGenerator()
            let data = (0..<(13 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let writer = try storage.makeWriter(key: "big.bin")
            for offset in stride(from: 0, to: data.count, by: 1 << 20) {
                try data[offset..<min(data.count, offset + (1 << 20))].withUnsafeBytes { try writer.write($0) }
            }
            try writer.commit {}
            let reader = try #require(try storage.openReader(key: "big.bin"))
            #expect(reader.size == Int64(data.count))
            let hashing = HashingSource(reader)
            var buffer = [UInt8](repeating: 0, count: 100_000)
            while try buffer.withUnsafeMutableBytes({ try hashing.read(into: $0) }) > 0 {}
            #expect(hashing.finalizeHex() == BackupInterop.SHA256.hex(of: data))

            let abandoned = try storage.makeWriter(key: "abandoned.bin")
            try data.withUnsafeBytes { try abandoned.write($0) }
            #expect(try bucket.moto.openMultipartUploads(bucket: bucket.name) == 1)
            abandoned.abort()
            #expect(try bucket.moto.openMultipartUploads(bucket: bucket.name) == 0)

            // Fenced out after its parts were sent: nothing published, the upload aborted.
            let fenced = try storage.makeWriter(key: "fenced.bin")
            try data.withUnsafeBytes { try fenced.write($0) }
            #expect(throws: ContingencyError.self) { try fenced.commit { throw ContingencyError.locked("lease lost") } }
            #expect(try bucket.moto.openMultipartUploads(bucket: bucket.name) == 0)
            #expect(throws: ContingencyError.self) { try data.withUnsafeBytes { try fenced.write($0) } }

            // Dropped with a part in flight.
            do {
                let dropped = try storage.makeWriter(key: "dropped.bin")
                try data.withUnsafeBytes { try dropped.write($0) }
            }
            #expect(try bucket.moto.openMultipartUploads(bucket: bucket.name) == 0)
            #expect(try storage.list(folder: "").map(\.name) == ["big.bin"])
        }
    }

    @Test("a listing of 2,500 backups returns all of them, newest first")
    func largeListing() async throws {
        try await TestBucket.with { bucket in
            let storage = try bucket.storage()
            let start = Date(timeIntervalSince1970: 1_700_000_000)
            let names = (0..<2500).map { BackupName(prefix: "visual_backup", date: start.addingTimeInterval(Double($0) * 3600), compression: .gzip) }
            let template = try ContingencyJSON.encoder().encode(
                Manifest(
                    metadata: BackupMetadata(
                        producer: "test", timestamp: "t", created: start, database: "db", version: nil, nodeVersion: nil,
                        pgDumpVersion: "15", serverVersion: "15", hostname: "h", compression: .gzip, members: [], uploads: nil,
                        missing: [], tables: nil),
                    archive: .init(name: "x", size: 1, sha256: "00", encrypted: false, recipients: nil)))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for slice in stride(from: 0, to: names.count, by: 250) {
                    group.addTask {
                        for name in names[slice..<min(names.count, slice + 250)] {
                            try storage.put(key: name.fileName, data: [0])
                            try storage.put(key: name.manifestName, data: Array(template))
                        }
                    }
                }
                try await group.waitForAll()
            }
            // An archive without a manifest (an interrupted run) is not listed.
            try storage.put(key: BackupName(prefix: "visual_backup", date: start.addingTimeInterval(-60), compression: .gzip).fileName, data: [0])

            #expect(try storage.list(folder: "").count == 5001)
            let listed = try BackupCatalog(storage: storage, prefix: "visual_backup").list()
            #expect(listed.count == 2500)
            #expect(listed.map(\.fileName) == names.reversed().map(\.fileName))
        }
    }

    @Test("backup to the bucket alone, then disaster recovery on a fresh machine: restore-job finds it there")
    func bucketOnlyRoundTrip() async throws {
        try await TestBucket.with { bucket in
            try await ApplicationFixture.with(uploadFiles: 20) { app in
                let before = try await app.snapshot()
                let backup = try await app.run("backup-job", environment: bucket.environment(app: app))
                try #require(backup.succeeded, "\(backup)")
                #expect(try app.storeFiles().isEmpty)
                let objects = try bucket.objects()
                #expect(objects.count == 2 && objects[0].hasSuffix(".tar.gz") && objects[1] == objects[0] + ".json", "\(objects)")
                #expect(try FileManager.default.contentsOfDirectory(atPath: app.root.appending("staging").path).isEmpty)

                // The object's bytes are the ones the manifest describes.
                let storage = try bucket.storage()
                let manifest = try ContingencyJSON.decoder().decode(
                    Manifest.self, from: Data(try #require(try storage.read(key: objects[1])).data))
                let hashing = HashingSource(try #require(try storage.openReader(key: objects[0])))
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                while try buffer.withUnsafeMutableBytes({ try hashing.read(into: $0) }) > 0 {}
                #expect(hashing.finalizeHex() == manifest.archive.sha256)
                #expect(hashing.count == manifest.archive.size)

                // Restored from the bucket alone (lease and probe in the bucket).
                _ = try await app.server.psql("UPDATE users SET name = 'damaged'", database: app.database)
                let fromBucket = try await app.run("restore-job", environment: bucket.environment(app: app))
                #expect(fromBucket.succeeded, "\(fromBucket)")
                #expect(try await app.snapshot() == before)
                #expect(try bucket.objects().count == 2)

                // The worst day: data damaged, and a fresh machine whose volume is empty.
                _ = try await app.server.psql(
                    "DROP TABLE attachments; UPDATE users SET name = 'damaged' WHERE id % 2 = 0; DELETE FROM posts WHERE id % 3 = 0;",
                    database: app.database)
                try FileManager.default.removeItem(at: app.uploadsDirectory)
                let freshVolume = app.root.appending("fresh-volume", isDirectory: true)
                try FileManager.default.createDirectory(at: freshVolume, withIntermediateDirectories: true)
                var environment = bucket.environment(app: app, volume: true)
                environment["BACKUP_DIR"] = freshVolume.path
                let restore = try await app.run("restore-job", environment: environment)
                #expect(restore.succeeded, "\(restore)")
                #expect(restore.stdout.contains("Restoring \(objects[0])"), "\(restore.stdout)")
                #expect(try await app.snapshot() == before)
            }
        }
    }

    @Test("with a volume and a bucket, every backup lands on both; a failed copy exits 3 and the next run copies it")
    func volumeWithBucketCopy() async throws {
        try await TestBucket.with { bucket in
            try await FaultProxy.with(upstream: bucket.moto.endpoint) { proxy in
                try await ApplicationFixture.with(uploadFiles: 5) { app in
                    let environment = bucket.environment(app: app, endpoint: proxy.endpoint, volume: true)
                    let first = try await app.run("backup-job", environment: environment)
                    try #require(first.succeeded, "\(first)")
                    #expect(try bucket.objects() == app.storeFiles())

                    // The bucket's server fails every upload: the backup is made on the volume, the run exits 3.
                    try proxy.set(FaultProxy.Faults(status: 503, count: nil, method: "PUT"))
                    let second = try await app.run("backup-job", environment: environment)
                    #expect(second.status == 3, "\(second)")
                    #expect(second.stderr.contains("the copy to \(bucket.url) failed"), "\(second.stderr)")
                    #expect(try app.storeFiles().count == 4)
                    #expect(try bucket.objects().count == 2)

                    // The bucket down altogether: restore-job still sees every backup of the volume.
                    try proxy.set(FaultProxy.Faults(status: 503, count: nil))
                    let verify = try await app.run("restore-job", ["--verify"], environment: environment)
                    #expect(verify.succeeded, "\(verify)")
                    #expect(verify.stderr.contains("Backups in \(bucket.url) are not listed"), "\(verify.stderr)")
                    #expect(verify.stdout.contains("All 2 backups verified"), "\(verify.stdout)")

                    // Healthy again: the next run copies both its own backup and the one that was missed.
                    try proxy.set(FaultProxy.Faults())
                    let third = try await app.run("backup-job", environment: environment.merging(["LOCK_TIMEOUT": "30s"]) { $1 })
                    #expect(third.succeeded, "\(third)")
                    #expect(try bucket.objects() == app.storeFiles())
                    #expect(try app.storeFiles().count == 6)
                }
            }
        }
    }

    @Test("bad credentials fail at once, naming the bucket and the key id, never the secret")
    func badCredentials() async throws {
        try await TestBucket.with { bucket in
            try await ApplicationFixture.with(uploadFiles: 2) { app in
                let wrongSecret = "wrong-secret-\(UUID().uuidString)"
                var environment = bucket.environment(app: app)
                environment["AWS_SECRET_ACCESS_KEY"] = wrongSecret
                let result = try await app.run("backup-job", environment: environment)
                #expect(result.status == 1, "\(result)")
                #expect(result.stderr.contains("s3://\(bucket.name)/"), "\(result.stderr)")
                #expect(result.stderr.contains("SignatureDoesNotMatch"), "\(result.stderr)")
                #expect(!result.stderr.contains(wrongSecret) && !result.stdout.contains(wrongSecret))
                #expect(!result.stderr.contains(bucket.moto.secretAccessKey))
                #expect(!result.stderr.contains("retrying"), "a permanent fault is not retried: \(result.stderr)")

                environment["AWS_ACCESS_KEY_ID"] = "AKIAUNKNOWNKEY000000"
                let unknown = try await app.run("backup-job", environment: environment)
                #expect(unknown.status == 1, "\(unknown)")
                #expect(unknown.stderr.contains("InvalidAccessKeyId") && unknown.stderr.contains("AKIAUNKNOWNKEY000000"), "\(unknown.stderr)")
            }
        }
    }

    @Test("a server that ignores conditional writes is detected at start: the jobs refuse to coordinate through it")
    func ignoredConditionalWrites() async throws {
        try await MotoServer.with(verifyingSignatures: false) { moto in
            let bucket = TestBucket(moto: moto, name: "lax-\(UUID().uuidString.prefix(8).lowercased())")
            try moto.createBucket(bucket.name)
            try await FaultProxy.with(upstream: moto.endpoint) { proxy in
                try proxy.set(FaultProxy.Faults(stripConditionalHeaders: true))
                try await ApplicationFixture.with(uploadFiles: 2) { app in
                    let result = try await app.run("backup-job", environment: bucket.environment(app: app, endpoint: proxy.endpoint))
                    #expect(result.status == 1, "\(result)")
                    #expect(result.stderr.contains("ignores conditional writes"), "\(result.stderr)")
                    #expect(try bucket.objects().isEmpty)
                    #expect(try bucket.storage().list(folder: ".contingency/locks").isEmpty)
                }
                // Straight to the server, which honours them, the same job runs.
                try await ApplicationFixture.with(uploadFiles: 2) { app in
                    let result = try await app.run("backup-job", environment: bucket.environment(app: app))
                    #expect(result.succeeded, "\(result)")
                }
            }
        }
    }

    @Test("transient faults between the job and the bucket (503 bursts, cut connections, a stall) are retried and the backup completes")
    func transientFaults() async throws {
        try await TestBucket.with { bucket in
            try await FaultProxy.with(upstream: bucket.moto.endpoint) { proxy in
                try await ApplicationFixture.with(uploadFiles: 5) { app in
                    try FileTreeSnapshot.writeRandomFile(app.uploadsDirectory.appendingPathComponent("large.bin"), size: 12 << 20)
                    try proxy.set(
                        FaultProxy.Faults([
                            .status(503, count: 2, method: "PUT", targetContains: "partNumber=1"),
                            .cutAfter(bytes: 1 << 20, of: .request, count: 1, method: "PUT", targetContains: "partNumber=2"),
                            .stall(.seconds(30), count: 1, method: "PUT", targetContains: "partNumber=3"),
                            .status(500, count: 1, method: "PUT", targetContains: ".json"),
                            .cutAfter(bytes: 100, of: .response, count: 1, method: "GET", targetContains: "list-type"),
                        ]))
                    let backup = try await app.run("backup-job", environment: bucket.environment(app: app, endpoint: proxy.endpoint))
                    #expect(backup.succeeded, "\(backup)")
                    #expect(backup.stderr.contains("retrying"), "\(backup.stderr)")
                    #expect(try proxy.stats().faultsInjected >= 5)
                    #expect(try bucket.objects().count == 2)
                    #expect(try bucket.moto.openMultipartUploads(bucket: bucket.name) == 0)

                    try proxy.set(FaultProxy.Faults())
                    let verify = try await app.run("restore-job", ["--verify"], environment: bucket.environment(app: app, endpoint: proxy.endpoint))
                    #expect(verify.succeeded, "\(verify)")
                }
            }
        }
    }

    @Test("a lasting fault fails the backup with a clear error: no manifest, no upload left open")
    func lastingFault() async throws {
        try await TestBucket.with { bucket in
            try await FaultProxy.with(upstream: bucket.moto.endpoint) { proxy in
                try await ApplicationFixture.with(uploadFiles: 5) { app in
                    try FileTreeSnapshot.writeRandomFile(app.uploadsDirectory.appendingPathComponent("large.bin"), size: 12 << 20)
                    try proxy.set(FaultProxy.Faults([.status(503, count: nil, method: "PUT", targetContains: "partNumber=2")]))
                    let backup = try await app.run("backup-job", environment: bucket.environment(app: app, endpoint: proxy.endpoint))
                    #expect(backup.status == 1, "\(backup)")
                    #expect(backup.stderr.contains("failed 5 times, the last with HTTP 503 SlowDown"), "\(backup.stderr)")
                    #expect(backup.stderr.contains("s3://\(bucket.name)/\(bucket.prefix)/visual_backup_"), "\(backup.stderr)")
                    #expect(try bucket.objects().isEmpty)
                    #expect(try bucket.moto.openMultipartUploads(bucket: bucket.name) == 0)
                    #expect(try FileManager.default.contentsOfDirectory(atPath: app.root.appending("staging").path).isEmpty)
                }
            }
        }
    }

    @Test("kill -9 in the middle of an upload: nothing listed, and the next run aborts the upload left open and succeeds")
    func killedMidUpload() async throws {
        try await TestBucket.with { bucket in
            try await FaultProxy.with(upstream: bucket.moto.endpoint) { proxy in
                try await ApplicationFixture.with(uploadFiles: 5) { app in
                    try FileTreeSnapshot.writeRandomFile(app.uploadsDirectory.appendingPathComponent("large.bin"), size: 12 << 20)
                    // The second part never gets an answer: the job is caught with an upload open.
                    try proxy.set(FaultProxy.Faults([.stall(.seconds(120), count: nil, method: "PUT", targetContains: "partNumber=2")]))
                    var environment = bucket.environment(app: app, endpoint: proxy.endpoint)
                    environment["S3_TIMEOUT"] = "60s"
                    let job = try app.launch("backup-job", environment: environment)
                    try await eventually(timeout: .seconds(120), "the upload of part 2 to stall") { try proxy.stats().faultsInjected >= 1 }
                    #expect(try bucket.moto.openMultipartUploads(bucket: bucket.name) == 1)
                    job.kill(SIGKILL)
                    _ = try await job.waitForExit(timeout: .seconds(30))
                    #expect(try BackupCatalog(storage: bucket.storage(), prefix: "visual_backup").list().isEmpty)

                    try proxy.set(FaultProxy.Faults())
                    let next = try await app.run("backup-job", environment: environment.merging(["LOCK_TIMEOUT": "30s"]) { $1 })
                    #expect(next.succeeded, "\(next)")
                    #expect(next.stdout.contains("Aborted 1 upload(s)"), "\(next.stdout)")
                    #expect(try bucket.moto.openMultipartUploads(bucket: bucket.name) == 0)
                    #expect(try BackupCatalog(storage: bucket.storage(), prefix: "visual_backup").list().count == 1)
                }
            }
        }
    }

    @Test("SIGTERM while a part upload stalls: the job stops at once (exit 130), the upload is aborted, nothing published")
    func cancelledMidUpload() async throws {
        try await TestBucket.with { bucket in
            try await FaultProxy.with(upstream: bucket.moto.endpoint) { proxy in
                try await ApplicationFixture.with(uploadFiles: 5) { app in
                    try FileTreeSnapshot.writeRandomFile(app.uploadsDirectory.appendingPathComponent("large.bin"), size: 12 << 20)
                    try proxy.set(FaultProxy.Faults([.stall(.seconds(600), count: nil, method: "PUT", targetContains: "partNumber=2")]))
                    var environment = bucket.environment(app: app, endpoint: proxy.endpoint)
                    environment["S3_TIMEOUT"] = "300s"  // far longer than the wait below: only cancellation can end it
                    let job = try app.launch("backup-job", environment: environment)
                    try await eventually(timeout: .seconds(120), "the upload of part 2 to stall") { try proxy.stats().faultsInjected >= 1 }
                    job.kill(SIGTERM)
                    let result = try await job.waitForExit(timeout: .seconds(30))
                    #expect(result.status == 130, "\(result)")
                    #expect(try bucket.moto.openMultipartUploads(bucket: bucket.name) == 0)
                    #expect(try bucket.objects().isEmpty)
                    #expect(try FileManager.default.contentsOfDirectory(atPath: app.root.appending("staging").path).isEmpty)
                }
            }
        }
    }

    @Test("the lease on a bucket: a killed holder is taken over after expiry with a higher token; a paused one is fenced out")
    func leaseOnBucket() async throws {
        try await TestBucket.with { bucket in
            try await ApplicationFixture.with(uploadFiles: 5) { app in
                let environment = bucket.environment(app: app)
                let storage = try bucket.storage()
                func token() throws -> Int {
                    let object = try #require(try storage.read(key: Lease.key(for: "store")))
                    return try ContingencyJSON.decoder().decode(LeaseRecord.self, from: Data(object.data)).token
                }
                let killed = try app.launch("backup-job", environment: environment.merging(["CONTINGENCY_FAILPOINT": "archive"]) { $1 })
                try await eventually("backup-job to stop midway") { killed.isStopped }
                let first = try token()
                killed.kill(SIGKILL)
                _ = try await killed.waitForExit(timeout: .seconds(30))
                let next = try await app.run("backup-job", environment: environment.merging(["LOCK_TIMEOUT": "30s"]) { $1 })
                #expect(next.succeeded, "\(next)")
                #expect(try token() > first)

                let paused = try app.launch("backup-job", environment: environment.merging(["CONTINGENCY_FAILPOINT": "archive"]) { $1 })
                try await eventually("backup-job to stop midway") { paused.isStopped }
                let third = try await app.run("backup-job", environment: environment.merging(["LOCK_TIMEOUT": "30s"]) { $1 })
                try #require(third.succeeded, "\(third)")
                let published = try bucket.objects()
                paused.kill(SIGCONT)
                let result = try await paused.waitForExit(timeout: .seconds(60))
                #expect(result.status == 11, "\(result)")
                #expect(result.stderr.contains("lost the lease"), "\(result.stderr)")
                #expect(try bucket.objects() == published)
                #expect(published.count == 4)
                #expect(try bucket.moto.openMultipartUploads(bucket: bucket.name) == 0)
            }
        }
    }

    @Test("a backup of a few hundred MB through the bucket: peak memory stays under 110 MB (two 16 MiB parts), the object matches its manifest")
    func memoryBound() async throws {
        try await TestBucket.with { bucket in
            try await ApplicationFixture.with(uploadFiles: 5) { app in
                for index in 0..<6 {
                    try FileTreeSnapshot.writeRandomFile(app.uploadsDirectory.appendingPathComponent("video-\(index).bin"), size: 50 << 20, seed: UInt64(index + 1))
                }
                var environment = app.environment(bucket.environment(app: app))
                environment["BACKUP_COMPRESSION"] = "zstd"
                environment["S3_PART_SIZE"] = "16MiB"
                let result = try await ProcessRunner.run(
                    "/usr/bin/time", ["-v", ApplicationFixture.executable("backup-job")], environment: environment, timeout: .seconds(600))
                #expect(result.succeeded, "\(result)")
                let line = try #require(result.stderr.split(separator: "\n").first { $0.contains("Maximum resident set size") })
                let kilobytes = try #require(Int(line.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)))
                print("backup-job through the bucket, \(ByteFormat.string(Int64(300 << 20))) of uploads: peak RSS \(kilobytes) kB")
                #expect(kilobytes < 110 * 1024, "peak RSS \(kilobytes) kB")

                let storage = try bucket.storage()
                let objects = try bucket.objects()
                let manifest = try ContingencyJSON.decoder().decode(
                    Manifest.self, from: Data(try #require(try storage.read(key: objects[1])).data))
                #expect(manifest.archive.size > 300 << 20)
                let hashing = HashingSource(try #require(try storage.openReader(key: objects[0])))
                var buffer = [UInt8](repeating: 0, count: 1 << 20)
                while try buffer.withUnsafeMutableBytes({ try hashing.read(into: $0) }) > 0 {}
                #expect(hashing.finalizeHex() == manifest.archive.sha256)
            }
        }
    }

    @Test("a write whose answer was lost is recognised by its writer: the lease and the request are still its own")
    func lostAnswers() async throws {
        try await TestBucket.with { bucket in
            try await FaultProxy.with(upstream: bucket.moto.endpoint) { proxy in
                let storage = try bucket.storage(endpoint: proxy.endpoint)
                try proxy.set(FaultProxy.Faults([.cutAfter(bytes: 0, of: .response, count: 1, method: "PUT", targetContains: "locks")]))
                let lease = try await Lease.acquire("store", storage: storage, job: "one", ttl: 30, timeout: 0)
                #expect(lease.token == 1)
                try proxy.set(FaultProxy.Faults([.cutAfter(bytes: 0, of: .response, count: 1, method: "PUT", targetContains: "locks")]))
                try lease.renew()
                try lease.confirm()
                let board = RequestBoard(storage: storage)
                try proxy.set(FaultProxy.Faults([.cutAfter(bytes: 0, of: .response, count: 1, method: "PUT", targetContains: "requests")]))
                let submitted = try board.submit(id: "rollback-incident-7", intent: .rollback, requestedBy: "sidecar")
                #expect(submitted.created)
                try proxy.set(FaultProxy.Faults([.cutAfter(bytes: 0, of: .response, count: 1, method: "PUT", targetContains: "requests")]))
                #expect(try board.transition("rollback-incident-7", from: .pending, to: .running, worker: "restore-job") != nil)
                let stats = try proxy.stats()
                #expect(stats.faultsInjected == 4, "\(stats)")
                lease.release()
            }
        }
    }
}
