import BackupCore
import BackupInterop
import Foundation

/// `backup-job keygen`: a new Ed25519 key pair as two PEM files, the private one created 0600 and never over an
/// existing file.
public enum KeyGeneration {
    public struct Result: Sendable {
        public let keyID: String
        public let privateKeyPath: String
        public let publicKeyPath: String
        /// The public key on one line, for BACKUP_VERIFY_KEYS in an environment.
        public let publicKeyLine: String
    }

    /// Writes the private key to `path` and the public key to `path` with `.pem` replaced by `.pub.pem`.
    public static func generate(privateKeyPath path: String) throws -> Result {
        let publicPath = (path.hasSuffix(".pem") ? String(path.dropLast(4)) : path) + ".pub.pem"
        for existing in [path, publicPath] where FileManager.default.fileExists(atPath: existing) {
            throw ContingencyError.failed(
                "\(existing) already exists; no key was written", hint: "choose another --out, or move the old key away first")
        }
        let key = try Ed25519Key.generate()
        try write(try key.privateKeyPEM(), to: path, mode: 0o600)
        do {
            try write(try key.publicKeyPEM(), to: publicPath, mode: 0o644)
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
        return Result(keyID: key.keyID, privateKeyPath: path, publicKeyPath: publicPath, publicKeyLine: try key.publicKeyLine())
    }

    /// Creates `path` (never over an existing file) with `mode` from the start, so the private key is never
    /// readable by others, even for an instant.
    private static func write(_ text: String, to path: String, mode: mode_t) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            throw ContingencyError.failed("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
            guard n > 0 else { throw ContingencyError.failed("cannot write \(path): \(String(cString: strerror(errno)))") }
            written += n
        }
        guard fchmod(descriptor, mode) == 0, fsync(descriptor) == 0 else {
            throw ContingencyError.failed("cannot finish \(path): \(String(cString: strerror(errno)))")
        }
    }
}
