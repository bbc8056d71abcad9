import BackupCore
import BackupKit
import Foundation
import Logging

extension SidecarContext {
    /// The stores labelled as `/metrics` names them (by their kind: volume or bucket), with the trust a restore
    /// applies: the same verify keys and clock allowance.
    static func storeMetrics(
        configuration: SidecarConfiguration, stores: Stores, values: ConfigurationValues?, logger: Logger
    ) -> StoreMetrics {
        var authenticator: ManifestAuthenticator? = ManifestAuthenticator(keys: [])
        var allowance = TimeInterval(TrustSettings().clockSkewAllowance)
        if let values {
            do {
                let trust = try TrustSettings.load(values)
                allowance = TimeInterval(trust.clockSkewAllowance)
                authenticator = try KeyLoader.authenticator(trust)
            } catch {
                authenticator = nil
                logger.error(
                    "/metrics leaves out the newest backup's gauges: the verify keys cannot be loaded (\(error))")
            }
        }
        return StoreMetrics(
            stores: stores.all, prefix: configuration.store.prefix, authenticator: authenticator, allowance: allowance,
            logger: logger)
    }
}
