import BackupCore
import BackupInterop
import Foundation
import Testing

@testable import BackupKit

/// What the signature of a manifest covers and what it does not, table by table: every change to what was
/// signed, and every key and name that is not the right one, makes a backup not genuine; what is added beside
/// the signed part (a drill's `verified`) and edits to the manifest's readable copy change nothing a restore uses.
@Suite("Manifest signatures")
struct ManifestAuthenticatorTests {
    static let name = "visual_backup_2025-01-15_14-30-00.tar.gz"

    static func manifest() -> Manifest {
        let metadata = BackupMetadata(
            producer: "backup-job 0.1.0", timestamp: "2025-01-15_14-30-00", created: Date(timeIntervalSince1970: 1_736_951_400),
            database: "visual_db", version: "1.5.0", nodeVersion: nil, pgDumpVersion: "15.18", serverVersion: "15.18",
            hostname: "backup-1", compression: .gzip,
            members: [.init(name: ArchiveLayout.databaseDump, size: 100, sha256: String(repeating: "a", count: 64))],
            uploads: nil, missing: [])
        return Manifest(
            metadata: metadata, archive: .init(name: name, size: 1000, sha256: String(repeating: "e", count: 64), encrypted: false))
    }

    /// A manifest written, read back as a restore reads it.
    static func roundTrip(_ manifest: Manifest) throws -> Manifest {
        try ContingencyJSON.decoder().decode(Manifest.self, from: ContingencyJSON.encoder().encode(manifest))
    }

    @Test("signed and read back: genuine, by the key's id; no keys: not checked; no signature: unsigned")
    func genuine() throws {
        let key = try Ed25519Key.generate()
        let signed = try Self.roundTrip(try ManifestAuthenticator.sign(Self.manifest(), with: key))
        let authenticator = ManifestAuthenticator(keys: [try Ed25519Key.generate(), key])
        let (authenticity, manifest) = authenticator.authenticate(signed, fileName: Self.name)
        #expect(authenticity == .genuine(keyID: key.keyID))
        #expect(manifest.metadata == Self.manifest().metadata && manifest.archive == Self.manifest().archive)
        #expect(ManifestAuthenticator(keys: []).authenticate(signed, fileName: Self.name).0 == .notChecked)
        #expect(authenticator.authenticate(Self.manifest(), fileName: Self.name).0 == .unsigned)
    }

    @Test("the readable copy edited (a member's hash, the archive's hash, the roles): still genuine, and the signed values are the ones used")
    func outerCopyIgnored() throws {
        let key = try Ed25519Key.generate()
        var edited = try ManifestAuthenticator.sign(Self.manifest(), with: key)
        edited.metadata.members[0].sha256 = String(repeating: "f", count: 64)
        edited.metadata.roles = ["attacker"]
        edited.archive.sha256 = String(repeating: "0", count: 64)
        edited.verified = .init(at: Date(), ok: true, detail: "forged")
        let (authenticity, manifest) = ManifestAuthenticator(keys: [key]).authenticate(edited, fileName: Self.name)
        #expect(authenticity == .genuine(keyID: key.keyID))
        #expect(manifest.metadata == Self.manifest().metadata && manifest.archive == Self.manifest().archive)
        // A drill's result is kept apart from what is signed: it passes through as it is.
        #expect(manifest.verified?.detail == "forged")
    }

    enum Forgery: String, CaseIterable {
        case signedDocumentEdited, signatureBitFlipped, otherKey, unknownKeyID, otherName, otherAlgorithm, notBase64,
            notAManifest, emptySignature, oversized
    }

    @Test("each forgery is not genuine, with a reason", arguments: Forgery.allCases)
    func forgeries(_ forgery: Forgery) throws {
        let key = try Ed25519Key.generate()
        let attacker = try Ed25519Key.generate()
        var manifest = try ManifestAuthenticator.sign(Self.manifest(), with: key)
        var signature = try #require(manifest.signature)
        func resign(_ document: [UInt8], with signer: Ed25519Key) throws {
            signature.signed = Data(document).base64EncodedString()
            signature.value = Data(try signer.sign(ManifestSignature.message(for: document))).base64EncodedString()
        }
        switch forgery {
        case .signedDocumentEdited:
            var document = Array(Data(base64Encoded: signature.signed)!)
            let text = String(decoding: document, as: UTF8.self).replacingOccurrences(of: "visual_db", with: "other_db")
            document = Array(text.utf8)
            signature.signed = Data(document).base64EncodedString()
        case .signatureBitFlipped:
            var value = Array(Data(base64Encoded: signature.value)!)
            value[10] ^= 0x04
            signature.value = Data(value).base64EncodedString()
        case .otherKey:
            // Signed by the attacker's key, claiming the genuine key's id.
            try resign(try SignedManifest(metadata: manifest.metadata, archive: manifest.archive).encoded(), with: attacker)
        case .unknownKeyID:
            try resign(try SignedManifest(metadata: manifest.metadata, archive: manifest.archive).encoded(), with: attacker)
            signature.keyID = attacker.keyID
        case .otherName:
            var archive = manifest.archive
            archive.name = "visual_backup_2099-01-01_00-00-00.tar.gz"
            try resign(try SignedManifest(metadata: manifest.metadata, archive: archive).encoded(), with: key)
        case .otherAlgorithm:
            signature.algorithm = "none"
        case .notBase64:
            signature.value = "***"
        case .notAManifest:
            try resign(Array(#"{"format":"something else"}"#.utf8), with: key)
        case .emptySignature:
            signature.value = ""
        case .oversized:
            signature.signed = String(repeating: "A", count: ManifestSignature.maximumEncodedLength + 4)
        }
        manifest.signature = signature
        let (authenticity, used) = ManifestAuthenticator(keys: [key]).authenticate(try Self.roundTrip(manifest), fileName: Self.name)
        guard case .notGenuine(let reason) = authenticity else {
            Issue.record("\(forgery): \(authenticity)")
            return
        }
        #expect(!reason.isEmpty && !authenticity.isTrusted)
        // What the restore is handed is the manifest as read, never something decoded from a bad signature.
        #expect(used.archive == manifest.archive)
    }
}
