import BackupCore
import Foundation
import Testing
import TestSupport

/// Signed backups: backup-job signs each manifest, restore-job with BACKUP_VERIFY_KEYS restores only genuine
/// backups. Every forgery starts from a real backup and recomputes every checksum, as someone with write
/// access to the store would; after each refused attempt the application is exactly as before.
@Suite("Signed backups and forged ones")
struct SignatureTests {
    /// A key pair made by `backup-job keygen`, in a folder outside the store.
    struct Keys {
        let folder: TemporaryDirectory
        var privateKey: String { folder.appending("signing.pem").path }
        var publicKey: String { folder.appending("signing.pub.pem").path }
    }

    func keygen(_ app: ApplicationFixture) async throws -> Keys {
        let keys = Keys(folder: try TemporaryDirectory(prefix: "contingency-keys"))
        let made = try await app.run("backup-job", ["keygen", "--out", keys.privateKey])
        try #require(made.succeeded, "\(made)")
        return keys
    }

    /// Runs Tests/Support/forge_backup.py on `archive` (a file name in the store) and returns the forged archive's
    /// file name.
    func forge(
        _ app: ApplicationFixture, _ archive: String, as output: String, replace: [String: Data] = [:], signature: String = "keep"
    ) async throws -> String {
        let scratch = try TemporaryDirectory()
        defer { scratch.remove() }
        var arguments = [
            Self.script, app.backupDirectory.appendingPathComponent(archive).path,
            app.backupDirectory.appendingPathComponent(output).path, "--signature", signature,
        ]
        for (member, data) in replace {
            let file = scratch.appending(member.replacingOccurrences(of: "/", with: "_"))
            try data.write(to: file)
            arguments += ["--replace", "\(member)=\(file.path)"]
        }
        _ = try await ProcessRunner.run("python3", arguments, requireSuccess: true)
        return output
    }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Support/forge_backup.py").path

    func newestArchive(_ app: ApplicationFixture) throws -> String {
        try #require(try app.storeFiles().filter { $0.hasSuffix(".tar.gz") }.last)
    }

    @Test("keygen writes a 0600 private key and its public key, never over existing files")
    func keygenFiles() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            let keys = try await keygen(app)
            defer { keys.folder.remove() }
            let mode = try FileManager.default.attributesOfItem(atPath: keys.privateKey)[.posixPermissions] as? Int
            #expect(mode == 0o600)
            #expect(try String(contentsOfFile: keys.publicKey, encoding: .utf8).hasPrefix("-----BEGIN PUBLIC KEY-----"))
            let before = try Data(contentsOf: URL(fileURLWithPath: keys.privateKey))
            let again = try await app.run("backup-job", ["keygen", "--out", keys.privateKey])
            #expect(again.status == 1 && again.stderr.contains("already exists"), "\(again)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: keys.privateKey)) == before)
        }
    }

    @Test("a signed backup restores with its public key (file or one line); the manifest names the key, holds no private key")
    func signedRestores() async throws {
        try await ApplicationFixture.with(uploadFiles: 5) { app in
            let keys = try await keygen(app)
            defer { keys.folder.remove() }
            let before = try await app.snapshot()
            let backup = try await app.run("backup-job", environment: ["BACKUP_SIGNING_KEY_FILE": keys.privateKey])
            try #require(backup.succeeded, "\(backup)")
            #expect(backup.stdout.contains("Signing the manifest with key"))
            let archive = try newestArchive(app)
            let manifestText = try String(contentsOfFile: app.backupDirectory.appendingPathComponent(archive + ".json").path, encoding: .utf8)
            let manifest = try ContingencyJSON.decoder().decode(Manifest.self, from: Data(manifestText.utf8))
            let privateBody = try String(contentsOfFile: keys.privateKey, encoding: .utf8).split(separator: "\n")[1]
            #expect(manifest.signature?.algorithm == "ed25519" && !manifestText.contains(privateBody))

            _ = try await app.server.psql("UPDATE users SET name = 'changed after the backup'", database: app.database)
            let restore = try await app.run("restore-job", environment: ["BACKUP_VERIFY_KEYS_FILE": keys.publicKey])
            try #require(restore.succeeded, "\(restore)")
            #expect(restore.stdout.contains("Backups must be signed by one of: \(manifest.signature?.keyID ?? "?")"))
            #expect(try await app.snapshot() == before)

            // The one-line form, beside a second (rotated) key.
            let line = try String(contentsOfFile: keys.publicKey, encoding: .utf8).split(separator: "\n")[1]
            let other = try await keygen(app)
            defer { other.folder.remove() }
            let otherLine = try String(contentsOfFile: other.publicKey, encoding: .utf8).split(separator: "\n")[1]
            let verify = try await app.run("restore-job", ["--verify"], environment: ["BACKUP_VERIFY_KEYS": "\(otherLine),\(line)"])
            #expect(verify.succeeded, "\(verify)")

            // A drill records its outcome in the manifest beside the signature, which still verifies.
            let drill = try await app.run(
                "restore-job", ["--drill"],
                environment: [
                    "BACKUP_VERIFY_KEYS_FILE": keys.publicKey, "DRILL_DATABASE_URL": app.server.connectionURL(database: "drill_scratch"),
                ])
            try #require(drill.succeeded, "\(drill)")
            let drilled = try ContingencyJSON.decoder().decode(
                Manifest.self, from: Data(contentsOf: app.backupDirectory.appendingPathComponent(archive + ".json")))
            #expect(drilled.verified?.ok == true && drilled.signature == manifest.signature)
            let afterDrill = try await app.run("restore-job", ["--verify"], environment: ["BACKUP_VERIFY_KEYS_FILE": keys.publicKey])
            #expect(afterDrill.succeeded, "\(afterDrill)")
        }
    }

    @Test("without verify keys every backup is taken and the job says backups are not authenticated")
    func notAuthenticated() async throws {
        try await ApplicationFixture.with(uploadFiles: 2) { app in
            let backup = try await app.run("backup-job")
            try #require(backup.succeeded, "\(backup)")
            #expect(backup.stderr.contains("Backups are not signed"))
            let verify = try await app.run("restore-job", ["--verify"])
            #expect(verify.succeeded && verify.stderr.contains("Backups are not authenticated"), "\(verify)")
        }
    }

    @Test(
        "a forged backup is refused before anything is touched: unsigned 12, signed by another key 12, a genuine signature over other bytes 1",
        arguments: ["remove", "resign", "keep"])
    func forgedMember(signature: String) async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let keys = try await keygen(app)
            defer { keys.folder.remove() }
            let attacker = try await keygen(app)
            defer { attacker.folder.remove() }
            try #require(try await app.run("backup-job", environment: ["BACKUP_SIGNING_KEY_FILE": keys.privateKey]).succeeded)
            let genuine = try newestArchive(app)
            let mode = signature == "resign" ? "resign:\(attacker.privateKey)" : signature
            // Signed by the genuine key for another name, the forgery can only replace the genuine backup in place.
            let forged = try await forge(
                app, genuine, as: signature == "keep" ? genuine : "visual_backup_2030-01-01_00-00-00.tar.gz",
                replace: [".env.backup": Data("DATABASE_URL=postgres://attacker@evil/db\n".utf8)], signature: mode)
            _ = try await app.server.psql("UPDATE users SET name = 'after the backup'", database: app.database)
            let before = try await app.snapshot()
            let roles = try await RoleSnapshot.take(app.server)

            let restore = try await app.run(
                "restore-job",
                environment: ["BACKUP_VERIFY_KEYS_FILE": keys.publicKey, "LATEST_BACKUP": forged, "CLOCK_SKEW_ALLOWANCE": "100000d"])
            #expect(restore.status == (signature == "keep" ? 1 : 12), "\(restore)")
            #expect(restore.stderr.contains("nothing was restored"), "\(restore.stderr)")
            #expect(try await app.snapshot() == before)
            #expect(try await RoleSnapshot.take(app.server) == roles)
            #expect(!FileManager.default.fileExists(atPath: app.envFile.path + ".before-restore"))

            guard signature != "keep" else {
                #expect(restore.stderr.contains("failed verification"), "\(restore.stderr)")
                return
            }
            // Not named, the forged one (newer by its name) is passed over and the genuine one restored.
            let newest = try await app.run(
                "restore-job", environment: ["BACKUP_VERIFY_KEYS_FILE": keys.publicKey, "CLOCK_SKEW_ALLOWANCE": "100000d"])
            try #require(newest.succeeded, "\(newest)")
            #expect(newest.stdout.contains("Restoring \(genuine)"), "\(newest.stdout)")
            #expect(newest.stderr.contains("Passing over \(forged)"), "\(newest.stderr)")
        }
    }

    @Test("a genuine backup copied under a newer name is not genuine; an unsigned one restores only when named with RESTORE_ALLOW_UNSIGNED")
    func renamedAndUnsigned() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let keys = try await keygen(app)
            defer { keys.folder.remove() }
            try #require(try await app.run("backup-job", environment: ["BACKUP_SIGNING_KEY_FILE": keys.privateKey]).succeeded)
            let genuine = try newestArchive(app)
            let renamed = try await forge(app, genuine, as: "visual_backup_2031-01-01_00-00-00.tar.gz")
            let verifyKeys = ["BACKUP_VERIFY_KEYS_FILE": keys.publicKey, "CLOCK_SKEW_ALLOWANCE": "100000d"]
            let named = try await app.run("restore-job", environment: verifyKeys.merging(["LATEST_BACKUP": renamed]) { $1 })
            #expect(named.status == 12 && named.stderr.contains("not genuine"), "\(named)")

            let unsigned = try await forge(app, genuine, as: "visual_backup_2032-01-01_00-00-00.tar.gz", signature: "remove")
            let refused = try await app.run("restore-job", environment: verifyKeys.merging(["LATEST_BACKUP": unsigned]) { $1 })
            #expect(refused.status == 12 && refused.stderr.contains("RESTORE_ALLOW_UNSIGNED"), "\(refused)")
            // Allowing unsigned backups does not make them "the newest": only a named one is taken.
            let allowed = verifyKeys.merging(["RESTORE_ALLOW_UNSIGNED": "true"]) { $1 }
            let newest = try await app.run("restore-job", environment: allowed)
            #expect(newest.succeeded && newest.stdout.contains("Restoring \(genuine)"), "\(newest)")
            let taken = try await app.run("restore-job", environment: allowed.merging(["LATEST_BACKUP": unsigned]) { $1 })
            #expect(taken.succeeded && taken.stderr.contains("is not signed; restoring it"), "\(taken)")
            // A badly signed one stays refused even then.
            let stillRefused = try await app.run("restore-job", environment: allowed.merging(["LATEST_BACKUP": renamed]) { $1 })
            #expect(stillRefused.status == 12, "\(stillRefused)")

            // --verify names the backups that are not genuine and fails with 12.
            let verify = try await app.run("restore-job", ["--verify"], environment: verifyKeys)
            #expect(verify.status == 12 && verify.stderr.contains(renamed), "\(verify)")
        }
    }

    @Test("a backup named for 2099 is never the newest (a warning names it), without keys too; named, it restores")
    func futureName() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            try #require(try await app.run("backup-job").succeeded)
            let real = try newestArchive(app)
            let future = try await forge(app, real, as: "visual_backup_2099-01-01_00-00-00.tar.gz")
            let restore = try await app.run("restore-job")
            try #require(restore.succeeded, "\(restore)")
            #expect(restore.stdout.contains("Restoring \(real)"), "\(restore.stdout)")
            #expect(restore.stderr.contains("Passing over \(future)") && restore.stderr.contains("CLOCK_SKEW_ALLOWANCE"), "\(restore.stderr)")
            let named = try await app.run("restore-job", environment: ["LATEST_BACKUP": future])
            #expect(named.succeeded && named.stdout.contains("Restoring \(future)"), "\(named)")
        }
    }

    @Test("an encrypted, signed backup restores; a signing key inside the store is refused before anything is written")
    func encryptedAndMisplacedKey() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let keys = try await keygen(app)
            defer { keys.folder.remove() }
            let before = try await app.snapshot()
            let backup = try await app.run(
                "backup-job", environment: ["BACKUP_SIGNING_KEY_FILE": keys.privateKey, "AGE_PASSPHRASE": "correct horse"])
            try #require(backup.succeeded, "\(backup)")
            _ = try await app.server.psql("UPDATE users SET name = 'changed after the backup'", database: app.database)
            let restore = try await app.run(
                "restore-job", environment: ["BACKUP_VERIFY_KEYS_FILE": keys.publicKey, "AGE_PASSPHRASE": "correct horse"])
            try #require(restore.succeeded, "\(restore)")
            #expect(try await app.snapshot() == before)

            let inside = app.backupDirectory.appendingPathComponent("keys/../signing.pem").path
            try FileManager.default.createDirectory(at: app.backupDirectory.appendingPathComponent("keys"), withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: keys.privateKey, toPath: app.backupDirectory.appendingPathComponent("signing.pem").path)
            let files = try app.storeFiles()
            let refused = try await app.run("backup-job", environment: ["BACKUP_SIGNING_KEY_FILE": inside])
            #expect(refused.status == 1 && refused.stderr.contains("is inside the store"), "\(refused)")
            #expect(try app.storeFiles() == files)
            // A path outside the store that is a symlink to the key inside it.
            let link = keys.folder.appending("link.pem").path
            try FileManager.default.createSymbolicLink(
                atPath: link, withDestinationPath: app.backupDirectory.appendingPathComponent("signing.pem").path)
            let throughLink = try await app.run("backup-job", environment: ["BACKUP_SIGNING_KEY_FILE": link])
            #expect(throughLink.status == 1 && throughLink.stderr.contains("through a symlink"), "\(throughLink)")
            #expect(try app.storeFiles() == files)
        }
    }
}
