import BackupCore
import Foundation
import Testing
import TestSupport

/// Encrypted backups: age format, readable by Debian's `age`, restored with the identity or passphrase; any
/// wrong key or damage is exit 12 before the database is touched.
@Suite("Encrypted backups")
struct EncryptionTests {
    /// An age key pair made by Debian's age-keygen: the identity file and its public key.
    func keyPair(in folder: TemporaryDirectory) async throws -> (file: String, recipient: String) {
        let file = folder.appending("identity.txt").path
        _ = try await ProcessRunner.run("age-keygen", ["-o", file], requireSuccess: true)
        let recipient = try await ProcessRunner.run("age-keygen", ["-y", file], requireSuccess: true).stdout
        return (file, recipient.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test("for a recipient: .age archive that age -d opens, manifest names the recipient, restore with the identity file")
    func recipients() async throws {
        try await ApplicationFixture.with(uploadFiles: 10) { app in
            let keys = try TemporaryDirectory()
            let (identity, recipient) = try await keyPair(in: keys)
            let before = try await app.snapshot()
            let backup = try await app.run("backup-job", environment: ["AGE_RECIPIENTS": recipient])
            try #require(backup.succeeded, "\(backup)")
            #expect(backup.stdout.contains("Encrypting with age for \(recipient)"))
            let archive = try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz.age") })
            let path = app.backupDirectory.appendingPathComponent(archive).path

            let manifest = try ContingencyJSON.decoder().decode(
                Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: path + ".json")))
            #expect(manifest.archive.encrypted && manifest.archive.recipients == [recipient])
            let secret = try String(contentsOfFile: identity, encoding: .utf8)
                .split(separator: "\n").first { $0.hasPrefix("AGE-SECRET-KEY") }.map(String.init) ?? "missing"
            let manifestText = try String(contentsOfFile: path + ".json", encoding: .utf8)
            #expect(!backup.stdout.contains(secret) && !manifestText.contains(secret))

            // The stock tool decrypts it without this product.
            let listing = try await ProcessRunner.run("bash", ["-c", "age -d -i '\(identity)' '\(path)' | tar -tzf - | grep -c database.dump"])
            #expect(listing.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "\(listing)")

            _ = try await app.server.psql("DROP TABLE attachments", database: app.database)
            try Data("BROKEN=1\n".utf8).write(to: app.envFile)
            let restore = try await app.run("restore-job", environment: ["AGE_IDENTITY_FILE": identity])
            try #require(restore.succeeded, "\(restore)")
            // Restored as it was read, each part decrypted from the sealed staged dump into pg_restore.
            #expect(restore.stdout.contains("Restoring the dump as it is read"), "\(restore.stdout)")
            #expect(try await app.snapshot() == before)

            let drill = try await app.run(
                "restore-job", ["--drill"],
                environment: ["AGE_IDENTITY_FILE": identity, "DRILL_DATABASE_URL": app.server.connectionURL(database: "drill_scratch")])
            #expect(drill.succeeded, "\(drill)")
        }
    }

    @Test("with a passphrase, both ways")
    func passphrase() async throws {
        try await ApplicationFixture.with(uploadFiles: 5) { app in
            let before = try await app.snapshot()
            try #require(try await app.run("backup-job", environment: ["AGE_PASSPHRASE": "correct horse battery staple"]).succeeded)
            _ = try await app.server.psql("DELETE FROM attachments", database: app.database)
            let wrong = try await app.run("restore-job", environment: ["AGE_PASSPHRASE": "wrong horse"])
            #expect(wrong.status == 12, "\(wrong)")
            let restore = try await app.run("restore-job", environment: ["AGE_PASSPHRASE": "correct horse battery staple"])
            try #require(restore.succeeded, "\(restore)")
            #expect(try await app.snapshot() == before)
            #expect(!restore.stdout.contains("correct horse") && !restore.stderr.contains("correct horse"))
        }
    }

    enum Damage: String, CaseIterable, Sendable {
        case noKey, missingKeyFile, wrongIdentity, truncated, header, middle, lastChunk
    }

    @Test("no key, a wrong identity, a truncated file, one flipped byte in the header, the middle, the last chunk: exit 12, nothing touched",
          arguments: Damage.allCases)
    func refused(_ damage: Damage) async throws {
        try await ApplicationFixture.with(uploadFiles: 8) { app in
            let keys = try TemporaryDirectory()
            let (identity, recipient) = try await keyPair(in: keys)
            try #require(try await app.run("backup-job", environment: ["AGE_RECIPIENTS": recipient]).succeeded)
            let archive = app.backupDirectory.appendingPathComponent(try #require(try app.storeFiles().first { $0.hasSuffix(".age") }))
            var bytes = try Data(contentsOf: archive)
            var environment = ["AGE_IDENTITY_FILE": identity]
            let otherKeys = try TemporaryDirectory()
            switch damage {
            case .noKey: environment = [:]
            case .missingKeyFile: environment["AGE_IDENTITY_FILE"] = otherKeys.appending("absent.txt").path
            case .wrongIdentity: environment["AGE_IDENTITY_FILE"] = try await keyPair(in: otherKeys).file
            case .truncated: bytes = bytes.prefix(bytes.count - 1000)
            case .header: bytes[40] ^= 0x01
            case .middle: bytes[bytes.count / 2] ^= 0x01
            case .lastChunk: bytes[bytes.count - 10] ^= 0x01
            }
            try bytes.write(to: archive)
            _ = try await app.server.psql("UPDATE users SET name = 'after the backup' WHERE id = 1", database: app.database)
            let before = try await app.snapshot()
            let restore = try await app.run("restore-job", environment: environment)
            #expect(restore.status == 12, "\(restore)")
            if damage != .missingKeyFile {
                #expect(restore.stderr.contains("nothing was restored"), "\(restore.stderr)")
            }
            #expect(try await app.snapshot() == before)
        }
    }

    @Test("while the backup runs, no plaintext of the database is on disk")
    func noPlaintextStaged() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            let keys = try TemporaryDirectory()
            let (_, recipient) = try await keyPair(in: keys)
            _ = try await app.server.psql("INSERT INTO users (email, name) VALUES ('marker@example.com', 'PLAINTEXT-MARKER-7f3a')", database: app.database)
            let job = try app.launch("backup-job", environment: ["AGE_RECIPIENTS": recipient, "CONTINGENCY_FAILPOINT": "dump"])
            try await eventually("backup-job to stop after the dump") { job.isStopped }
            let staged = app.temporaryFiles()
            #expect(!staged.isEmpty)
            for name in staged {
                let data = try Data(contentsOf: app.backupDirectory.appendingPathComponent(".contingency/tmp/\(name)"))
                #expect(data.count > 1000)
                #expect(data.range(of: Data("PLAINTEXT-MARKER-7f3a".utf8)) == nil, "\(name) holds plaintext")
                #expect(data.prefix(21) == Data("age-encryption.org/v1".utf8), "\(name)")
            }
            job.kill(SIGKILL)
            _ = try await job.waitForExit()
        }
    }

    @Test("AGE_RECIPIENTS_FILE with comments beside an empty AGE_RECIPIENTS encrypts; a drill without the key is exit 12 and not recorded")
    func recipientsFile() async throws {
        try await ApplicationFixture.with(uploadFiles: 2) { app in
            let keys = try TemporaryDirectory()
            let (_, recipient) = try await keyPair(in: keys)
            let file = keys.appending("recipients.txt")
            try Data("# ops team key\n\(recipient)\n".utf8).write(to: file)
            let backup = try await app.run("backup-job", environment: ["AGE_RECIPIENTS": "", "AGE_RECIPIENTS_FILE": file.path])
            try #require(backup.succeeded, "\(backup)")
            #expect(try app.storeFiles().contains { $0.hasSuffix(".tar.gz.age") })

            let drill = try await app.run(
                "restore-job", ["--drill"], environment: ["DRILL_DATABASE_URL": app.server.connectionURL(database: "drill_scratch")])
            #expect(drill.status == 12, "\(drill)")
            let name = try #require(try app.storeFiles().first { $0.hasSuffix(".json") })
            let manifest = try ContingencyJSON.decoder().decode(Manifest.self, from: Data(contentsOf: app.backupDirectory.appendingPathComponent(name)))
            #expect(manifest.verified == nil)

            let empty = keys.appending("empty.txt")
            try Data().write(to: empty)
            let refused = try await app.run("backup-job", environment: ["AGE_RECIPIENTS_FILE": empty.path])
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("AGE_RECIPIENTS_FILE=\(empty.path) is empty"), "\(refused.stderr)")
        }
    }
}
