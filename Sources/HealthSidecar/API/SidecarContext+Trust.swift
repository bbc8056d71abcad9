import BackupCore
import BackupKit

extension SidecarContext {
    /// The verify keys (BACKUP_VERIFY_KEYS) as the listings judge backups by: each backup shows whether it is
    /// genuine. Keys that cannot be read leave every backup `notChecked` and say why in the log: a listing is for
    /// looking, and stays available; what acts on a backup (DELETE, the runner) refuses such keys itself.
    func authenticator() -> ManifestAuthenticator {
        guard let values else { return ManifestAuthenticator(keys: []) }
        do {
            return try KeyLoader.authenticator(try TrustSettings.load(values))
        } catch {
            logger.warning(
                "[API] Backups are listed without checking their signatures: the verify keys cannot be read: \(error)")
            return ManifestAuthenticator(keys: [])
        }
    }
}
