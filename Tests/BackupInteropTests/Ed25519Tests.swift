import BackupCore
import Foundation
import Testing
import TestSupport

@testable import BackupInterop

/// Ed25519 through OpenSSL, checked against the `openssl` command line: keys it makes load here, signatures made
/// here verify there and the other way round, and anything else is simply not valid.
@Suite("Ed25519 signatures")
struct Ed25519Tests {
    func openssl(_ arguments: [String], in folder: TemporaryDirectory) async throws -> ProcessResult {
        try await ProcessRunner.run("openssl", arguments, workingDirectory: folder.url, requireSuccess: false)
    }

    @Test("a key made by openssl genpkey signs here, and openssl pkeyutl verifies the signature; openssl's signature verifies here")
    func interoperates() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try #require(try await openssl(["genpkey", "-algorithm", "ed25519", "-out", "key.pem"], in: folder).succeeded)
        try #require(try await openssl(["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"], in: folder).succeeded)
        let key = try Ed25519Key.privateKey(pem: try String(contentsOfFile: folder.appending("key.pem").path, encoding: .utf8), source: "key.pem")
        let publicKey = try Ed25519Key.publicKey(try String(contentsOfFile: folder.appending("pub.pem").path, encoding: .utf8), source: "pub.pem")
        #expect(key.publicKeyBytes == publicKey.publicKeyBytes)

        let message = Array("a manifest's signed bytes\n".utf8)
        try Data(message).write(to: folder.appending("message"))
        try Data(try key.sign(message)).write(to: folder.appending("ours.sig"))
        let verified = try await openssl(
            ["pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "message", "-sigfile", "ours.sig"], in: folder)
        #expect(verified.succeeded && verified.stdout.contains("Signature Verified Successfully"), "\(verified)")

        try #require(
            try await openssl(["pkeyutl", "-sign", "-inkey", "key.pem", "-rawin", "-in", "message", "-out", "theirs.sig"], in: folder).succeeded)
        let theirs = Array(try Data(contentsOf: folder.appending("theirs.sig")))
        #expect(publicKey.verify(theirs, of: message))
        #expect(!publicKey.verify(theirs, of: message + [0]))
    }

    @Test("a changed bit in the signature or the message, another key, or a signature of the wrong length does not verify")
    func rejects() throws {
        let key = try Ed25519Key.generate()
        let other = try Ed25519Key.generate()
        let message = Array("contingency".utf8)
        let signature = try key.sign(message)
        let publicKey = try Ed25519Key.publicKey(try key.publicKeyLine(), source: "line")
        #expect(publicKey.verify(signature, of: message))
        for bit in [0, 7, 100, 511] {
            var changed = signature
            changed[bit / 8] ^= UInt8(1 << (bit % 8))
            #expect(!publicKey.verify(changed, of: message), "bit \(bit)")
        }
        var changedMessage = message
        changedMessage[3] ^= 0x20
        #expect(!publicKey.verify(signature, of: changedMessage))
        #expect(!other.verify(signature, of: message))
        #expect(!publicKey.verify(Array(signature.prefix(63)), of: message))
        #expect(!publicKey.verify(signature + [0], of: message))
        #expect(!publicKey.verify([], of: message))
    }

    @Test("PEM and one-line public keys load alike; a private key, another algorithm's key or garbage is a key error")
    func loading() async throws {
        let key = try Ed25519Key.generate()
        let fromPEM = try Ed25519Key.publicKey(try key.publicKeyPEM(), source: "pem")
        let fromLine = try Ed25519Key.publicKey(try key.publicKeyLine(), source: "line")
        #expect(fromPEM.keyID == key.keyID && fromLine.keyID == key.keyID && !fromLine.isPrivate)
        #expect(throws: ContingencyError.self) { try Ed25519Key.publicKey(try key.privateKeyPEM(), source: "private") }
        #expect(throws: ContingencyError.self) { try Ed25519Key.publicKey("not a key", source: "garbage") }
        #expect(throws: ContingencyError.self) { try Ed25519Key.privateKey(pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", source: "x") }
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        _ = try await openssl(["genpkey", "-algorithm", "x25519", "-out", "x.pem"], in: folder)
        _ = try await openssl(["pkey", "-in", "x.pem", "-pubout", "-out", "x.pub.pem"], in: folder)
        let x25519 = try String(contentsOfFile: folder.appending("x.pub.pem").path, encoding: .utf8)
        let error = #expect(throws: ContingencyError.self) { try Ed25519Key.publicKey(x25519, source: "x.pub.pem") }
        #expect(error?.message.contains("not an Ed25519 key") == true && error?.exitStatus == .keyError)
        // The private key's text never appears in an error.
        let privatePEM = try key.privateKeyPEM()
        let body = privatePEM.split(separator: "\n")[1]
        let refused = #expect(throws: ContingencyError.self) { try Ed25519Key.publicKey(privatePEM, source: "BACKUP_VERIFY_KEYS") }
        #expect(refused.map { !$0.description.contains(body) } == true)
    }
}
