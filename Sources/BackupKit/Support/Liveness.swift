import Foundation

/// The liveness file every `--loop` process touches while its loop runs (LIVENESS_FILE): the image's
/// HEALTHCHECK and a Kubernetes exec probe read its age, so one image serves every role.
public enum Liveness {
    /// Sets the file's modification time to now, creating it (0644) if needed. Failures are ignored: liveness
    /// is what the probe sees, not something the loop can fix.
    public static func touch(_ path: String) {
        if FileManager.default.fileExists(atPath: path) {
            _ = utimes(path, nil)
        } else {
            FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o644])
        }
    }
}
