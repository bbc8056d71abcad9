import BackupCore
import Foundation
import Testing
import TestSupport

/// Attacks on signed backups by someone who can write to the store but does not hold the signing key, with
/// BACKUP_VERIFY_KEYS set on restore-job; and the secret that signs kept out of what backup-job's children see.
@Suite("Attacks on signed backups")
struct SignatureAttackTests {
    let signatures = SignatureTests()

    /// A custom-format archive (version 1.14) holding one pre-data entry whose definition is `sql`: pg_restore
    /// runs such a definition as it is, so a dump can carry any SQL (CREATE ROLE, ALTER ROLE … SUPERUSER, …).
    static func dumpRunning(_ sql: String) -> Data {
        func int(_ value: Int) -> [UInt8] {
            [value < 0 ? 1 : 0] + (0..<4).map { UInt8(truncatingIfNeeded: abs(value) >> (8 * $0)) }
        }
        func string(_ text: String?) -> [UInt8] { text.map { int($0.utf8.count) + Array($0.utf8) } ?? int(-1) }
        var bytes = Array("PGDMP".utf8) + [1, 14, 0, 4, 8, 1] + int(0)
        for _ in 0..<7 { bytes += int(0) }
        bytes += string("app") + string("15.0") + string("15.0") + int(1)
        // dump id 1, no data dumper, table oid, oid, tag, desc, section pre-data (2)
        bytes += int(1) + int(0) + string("0") + string("0") + string("pwned") + string("SCHEMA") + int(2)
        // definition, drop statement, copy statement, namespace, tablespace, table access method, owner, with oids
        bytes += string(sql) + string("") + string("") + string("") + string("") + string("") + string("") + string("false")
        // no dependencies; no data (state 3) and an unused offset
        bytes += string(nil) + [3] + [UInt8](repeating: 0, count: 8)
        return Data(bytes)
    }

    /// The start of a custom-format header whose first integer (8 bytes wide, sign byte set) is -Int.min: the
    /// dump scanner's integer decoding overflows on it.
    static let overflowingHeader = Data(
        Array("PGDMP".utf8) + [1, 14, 0, 8, 8, 1] + [1, 0, 0, 0, 0, 0, 0, 0, 0x80] + [UInt8](repeating: 0, count: 64))

    func signing(_ keys: SignatureTests.Keys) -> [String: String] { ["BACKUP_SIGNING_KEY_FILE": keys.privateKey] }

    func roleExists(_ app: ApplicationFixture, _ name: String) async throws -> Bool {
        try await app.server.psql("SELECT count(*) FROM pg_roles WHERE rolname = '\(name)'")
            .trimmingCharacters(in: .whitespacesAndNewlines) == "1"
    }

    @Test("a dump carrying SQL, put in place of a signed backup's dump (its signature kept): none of it runs, nothing restored")
    func forgedDumpSQLNeverRuns() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let keys = try await signatures.keygen(app)
            defer { keys.folder.remove() }
            try #require(try await app.run("backup-job", environment: signing(keys)).succeeded)
            let genuine = try signatures.newestArchive(app)
            let evil = Self.dumpRunning("CREATE ROLE pwned SUPERUSER LOGIN;\n")
            // The control: pg_restore takes the crafted dump and would run its SQL.
            let scratch = try TemporaryDirectory()
            defer { scratch.remove() }
            let file = scratch.appending("evil.dump")
            try evil.write(to: file)
            let pgRestore = app.server.binDir.appendingPathComponent("pg_restore").path
            let listed = try await ProcessRunner.run(pgRestore, ["-f", "-", file.path])
            try #require(listed.succeeded && listed.stdout.contains("CREATE ROLE pwned SUPERUSER LOGIN;"), "\(listed)")

            _ = try await signatures.forge(app, genuine, as: genuine, replace: ["database.dump": evil], signature: "keep")
            _ = try await app.server.psql("UPDATE users SET name = 'after the backup'", database: app.database)
            let before = try await app.snapshot()
            for extra in [[:], ["LATEST_BACKUP": genuine]] as [[String: String]] {
                let restore = try await app.run(
                    "restore-job", environment: extra.merging(["BACKUP_VERIFY_KEYS_FILE": keys.publicKey]) { $1 })
                #expect(restore.terminationSignal == nil && restore.status == 1, "\(restore)")
                #expect(restore.stderr.contains("nothing was restored"), "\(restore.stderr)")
                #expect(try await !roleExists(app, "pwned"))
                #expect(try await app.snapshot() == before)
            }
        }
    }

    @Test("a dump whose header overflows the dump scanner, under a signed backup's manifest: a clear error, never a signal")
    func forgedDumpHeaderNeverCrashes() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let keys = try await signatures.keygen(app)
            defer { keys.folder.remove() }
            try #require(try await app.run("backup-job", environment: signing(keys)).succeeded)
            let genuine = try signatures.newestArchive(app)
            // In place, the genuine signature kept: globals.sql (before the dump) still matches, so the restore
            // follows the dump as it arrives, and the scanner reads its first bytes before their block is checked.
            _ = try await signatures.forge(
                app, genuine, as: genuine, replace: ["database.dump": Self.overflowingHeader], signature: "keep")
            _ = try await app.server.psql("UPDATE users SET name = 'after the backup'", database: app.database)
            let before = try await app.snapshot()
            let restore = try await app.run("restore-job", environment: ["BACKUP_VERIFY_KEYS_FILE": keys.publicKey])
            #expect(restore.terminationSignal == nil && restore.status == 1, "\(restore)")
            #expect(restore.stderr.contains("nothing was restored"), "\(restore.stderr)")
            #expect(try await app.snapshot() == before)
            #expect(app.temporaryFiles().isEmpty, "\(app.temporaryFiles())")
        }
    }

    @Test(
        "the signing key (BACKUP_SIGNING_KEY or its _FILE) is not passed to backup-job's pre and post commands",
        arguments: ["BACKUP_SIGNING_KEY", "BACKUP_SIGNING_KEY_FILE"])
    func signingKeyWithheldFromHooks(variable: String) async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            let keys = try await signatures.keygen(app)
            defer { keys.folder.remove() }
            let pem = try String(contentsOfFile: keys.privateKey, encoding: .utf8)
            let seen = app.root.appending("hook-environment.txt")
            let backup = try await app.run(
                "backup-job",
                environment: [
                    variable: variable.hasSuffix("_FILE") ? keys.privateKey : pem,
                    "BACKUP_PRE_COMMAND": "env > '\(seen.path)'",
                    "BACKUP_POST_COMMAND": "env >> '\(seen.path)'",
                ])
            try #require(backup.succeeded && backup.stdout.contains("Signing the manifest with key"), "\(backup)")
            let environment = try String(contentsOf: seen, encoding: .utf8)
            #expect(environment.contains("CONTINGENCY_JOB"), "the hooks did not run")
            #expect(!environment.contains("BACKUP_SIGNING_KEY"), "a hook saw the signing key's variable")
            #expect(!environment.contains("PRIVATE KEY") && !environment.contains(keys.privateKey))
            // The same holds in what backup-job prints.
            #expect(!(backup.stdout + backup.stderr).contains("PRIVATE KEY"))
        }
    }

    @Test("the bucket copy keeps the signature: from the bucket alone the backup restores with the verify key")
    func bucketCopyKeepsSignature() async throws {
        try await TestBucket.with { bucket in
            try await ApplicationFixture.with(uploadFiles: 3) { app in
                let keys = try await signatures.keygen(app)
                defer { keys.folder.remove() }
                let backup = try await app.run(
                    "backup-job", environment: bucket.environment(app: app, volume: true).merging(signing(keys)) { $1 })
                try #require(backup.succeeded, "\(backup)")
                let archive = try signatures.newestArchive(app)
                #expect(try bucket.objects() == app.storeFiles())
                _ = try await app.server.psql("UPDATE users SET name = 'after the backup'", database: app.database)
                let bucketOnly = bucket.environment(app: app).merging(["BACKUP_VERIFY_KEYS_FILE": keys.publicKey]) { $1 }
                let restore = try await app.run("restore-job", environment: bucketOnly)
                #expect(restore.succeeded && restore.stdout.contains("Restoring \(archive)"), "\(restore)")
            }
        }
    }

    /// Deleting the volume's copy of a backup lets a restore find the bucket's; making the volume's copy not genuine
    /// must not do worse: the off-site copy is there for the day the volume cannot be trusted.
    @Test("a backup made not genuine on the volume is taken from the bucket, where its copy is genuine, named or not")
    func volumeForgeryDoesNotHideBucketCopy() async throws {
        try await TestBucket.with { bucket in
            try await ApplicationFixture.with(uploadFiles: 3) { app in
                let keys = try await signatures.keygen(app)
                defer { keys.folder.remove() }
                let environment = bucket.environment(app: app, volume: true)
                let signed = environment.merging(signing(keys)) { $1 }
                try #require(try await app.run("backup-job", environment: signed).succeeded)
                let older = try signatures.newestArchive(app)
                _ = try await app.server.psql("UPDATE users SET name = 'in the newer backup'", database: app.database)
                let newer = try await app.run("backup-job", environment: signed.merging(["LOCK_TIMEOUT": "30s"]) { $1 })
                try #require(newer.succeeded, "\(newer)")
                let newest = try signatures.newestArchive(app)
                try #require(try newest != older && bucket.objects() == app.storeFiles())
                let expected = try await app.snapshot()
                // On the volume only: the newest backup's signature removed (its archive rewritten to match).
                _ = try await signatures.forge(app, newest, as: newest, signature: "remove")
                _ = try await app.server.psql("UPDATE users SET name = 'after the backups'", database: app.database)

                let verifying = environment.merging(["BACKUP_VERIFY_KEYS_FILE": keys.publicKey]) { $1 }
                let restore = try await app.run("restore-job", environment: verifying)
                #expect(restore.succeeded && restore.stdout.contains("Restoring \(newest)"), "\(restore)")
                #expect(try await app.snapshot() == expected)
                _ = try await app.server.psql("UPDATE users SET name = 'after the backups'", database: app.database)
                let named = try await app.run(
                    "restore-job", environment: verifying.merging(["LATEST_BACKUP": newest]) { $1 })
                #expect(named.succeeded, "\(named)")
                #expect(try await app.snapshot() == expected)
            }
        }
    }

    /// Into an empty bucket only "the newest" backup is copied, and afterwards only backups newer than the bucket's
    /// oldest: a name is a claim, not a time (issue 16), or one forged backup dated 2099 on the volume stops every
    /// genuine backup from ever reaching the bucket.
    @Test("a forged backup dated 2099 on the volume does not keep the genuine backups out of the bucket copy")
    func futureForgeryDoesNotStopBucketCopy() async throws {
        try await TestBucket.with { bucket in
            try await ApplicationFixture.with(uploadFiles: 2) { app in
                let keys = try await signatures.keygen(app)
                defer { keys.folder.remove() }
                try #require(try await app.run("backup-job", environment: signing(keys)).succeeded)
                let first = try signatures.newestArchive(app)
                let future = try await signatures.forge(
                    app, first, as: "visual_backup_2099-01-01_00-00-00.tar.gz", signature: "remove")
                let environment = bucket.environment(app: app, volume: true).merging(signing(keys)) { $1 }
                let second = try await app.run("backup-job", environment: environment.merging(["LOCK_TIMEOUT": "30s"]) { $1 })
                #expect(second.succeeded, "\(second)")
                let made = try #require(
                    try app.storeFiles().filter { $0.hasSuffix(".tar.gz") && $0 != future && $0 != first }.first)
                let copied = try bucket.objects()
                #expect(copied.contains(made + ".json"), "\(copied)")
            }
        }
    }

    /// backup-job copies to the bucket what the volume holds and the bucket lacks; with a signing key, only what
    /// that key signed, so whoever can write to the volume cannot reach the off-site copy through it.
    @Test("a signing backup-job does not copy a forged (unsigned or otherwise signed) backup from the volume to the bucket")
    func forgeryNotSpreadToBucket() async throws {
        try await TestBucket.with { bucket in
            try await ApplicationFixture.with(uploadFiles: 2) { app in
                let keys = try await signatures.keygen(app)
                defer { keys.folder.remove() }
                let attacker = try await signatures.keygen(app)
                defer { attacker.folder.remove() }
                let environment = bucket.environment(app: app, volume: true).merging(signing(keys)) { $1 }
                try #require(try await app.run("backup-job", environment: environment).succeeded)
                let first = try signatures.newestArchive(app)
                // Dated a minute from now: newer than the bucket's oldest, not ahead of the clock's allowance.
                let formatter = DateFormatter()
                formatter.locale = Locale(identifier: "en_US_POSIX")
                formatter.timeZone = TimeZone(identifier: "UTC")
                formatter.dateFormat = "yyyy-MM-dd_HH-mm-ss"
                let unsigned = try await signatures.forge(
                    app, first, as: "visual_backup_\(formatter.string(from: Date().addingTimeInterval(60))).tar.gz",
                    signature: "remove")
                let resigned = try await signatures.forge(
                    app, first, as: "visual_backup_\(formatter.string(from: Date().addingTimeInterval(120))).tar.gz",
                    signature: "resign:\(attacker.privateKey)")
                let second = try await app.run("backup-job", environment: environment.merging(["LOCK_TIMEOUT": "30s"]) { $1 })
                #expect(second.status == 0, "\(second)")
                let copied = try bucket.objects()
                #expect(!copied.contains(unsigned) && !copied.contains(unsigned + ".json"), "\(copied)")
                #expect(!copied.contains(resigned) && !copied.contains(resigned + ".json"), "\(copied)")
                #expect(second.stderr.contains("Not copying \(unsigned)") && second.stderr.contains("Not copying \(resigned)"), "\(second.stderr)")
            }
        }
    }

    /// An empty secret file (a mount that did not render, a key list emptied while rotating) must not turn the
    /// check off: the operator asked for signed backups.
    @Test("BACKUP_VERIFY_KEYS(_FILE) set but holding no key is refused, not taken as 'not authenticated'")
    func emptyVerifyKeysFailClosed() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            try #require(try await app.run("backup-job").succeeded)
            let empty = app.root.appending("verify-keys.pem")
            for (contents, environment) in [
                ("", ["BACKUP_VERIFY_KEYS_FILE": empty.path]),
                ("# the old key was removed here\n", ["BACKUP_VERIFY_KEYS_FILE": empty.path]),
                ("", ["BACKUP_VERIFY_KEYS": "# none yet"]),
            ] {
                try Data(contents.utf8).write(to: empty)
                let verify = try await app.run("restore-job", ["--verify"], environment: environment)
                #expect(!verify.succeeded && verify.stderr.contains("BACKUP_VERIFY_KEYS"), "\(environment): \(verify)")
                #expect(!verify.stdout.contains("verified"), "\(verify.stdout)")
            }
        }
    }

    @Test("wrong key files are refused with exit 12, naming the setting, never showing a key's bytes")
    func wrongKeyFiles() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            let keys = try await signatures.keygen(app)
            defer { keys.folder.remove() }
            try #require(try await app.run("backup-job", environment: signing(keys)).succeeded)
            let privateBody = try String(contentsOfFile: keys.privateKey, encoding: .utf8).split(separator: "\n")[1]
            let privateInVerify = try await app.run(
                "restore-job", ["--verify"], environment: ["BACKUP_VERIFY_KEYS_FILE": keys.privateKey])
            #expect(privateInVerify.status == 12 && privateInVerify.stderr.contains("private key"), "\(privateInVerify)")
            // The private key's body on one line, as one would paste a public key.
            let pasted = try await app.run(
                "restore-job", ["--verify"], environment: ["BACKUP_VERIFY_KEYS": String(privateBody)])
            #expect(pasted.status == 12 && pasted.stderr.contains("BACKUP_VERIFY_KEYS"), "\(pasted)")
            // A path given where the key itself is expected.
            let path = try await app.run("restore-job", ["--verify"], environment: ["BACKUP_VERIFY_KEYS": keys.publicKey])
            #expect(path.status == 12 && path.stderr.contains("BACKUP_VERIFY_KEYS"), "\(path)")
            let publicAsSigning = try await app.run("backup-job", environment: ["BACKUP_SIGNING_KEY_FILE": keys.publicKey])
            #expect(publicAsSigning.status == 12, "\(publicAsSigning)")
            for result in [privateInVerify, pasted, path, publicAsSigning] {
                #expect(!(result.stdout + result.stderr).contains(privateBody))
            }
        }
    }
}
