import Foundation

/// The application's version (its code) when a backup began, so that a rollback restores code and data
/// together: pre-deploy data under a broken new image does not heal an app, nor does a forward-migrated schema
/// under the old image. Recorded in `metadata.json` (`deployment`) by the app control that can read it.
public struct AppDeployment: Codable, Sendable, Equatable {
    /// The app control that recorded it: `docker` or `kubernetes` (`command` records nothing).
    public var control: String
    /// Docker: the labelled containers, by name.
    public var containers: [Container]?
    /// Kubernetes: the Deployment's name and namespace and its pod template, recorded whole (revision history
    /// may be pruned by the time a rollback needs it).
    public var deployment: String?
    public var namespace: String?
    public var podTemplate: JSONValue?

    public init(
        control: String, containers: [Container]? = nil, deployment: String? = nil, namespace: String? = nil,
        podTemplate: JSONValue? = nil
    ) {
        self.control = control
        self.containers = containers
        self.deployment = deployment
        self.namespace = namespace
        self.podTemplate = podTemplate
    }

    /// One container of the application, as Docker's inspect shows it.
    public struct Container: Codable, Sendable, Equatable {
        /// Its name, without Docker's leading "/".
        public var name: String
        /// The image id it runs (`sha256:…`): what a rollback recreates it on.
        public var imageID: String
        /// The image reference it was created from (`registry/app:1.4`), for people.
        public var image: String
        public init(name: String, imageID: String, image: String) {
            self.name = name
            self.imageID = imageID
            self.image = image
        }
    }

    /// One line for logs and plans: `docker: web on registry/app:1.4 (sha256:0123456789ab)`.
    public var summary: String {
        if let containers {
            return "\(control): "
                + containers.map { "\($0.name) on \($0.image) (\($0.imageID.prefix(19)))" }.joined(separator: ", ")
        }
        if let deployment {
            let images = Self.images(in: podTemplate)
            return "\(control): deployment \(namespace.map { "\($0)/" } ?? "")\(deployment)"
                + (images.isEmpty ? "" : " with \(images.joined(separator: ", "))")
        }
        return control
    }

    /// The container images a pod template names.
    public static func images(in template: JSONValue?) -> [String] {
        guard case .array(let containers)? = template?["spec"]?["containers"] else { return [] }
        return containers.compactMap { $0["image"]?.stringValue }
    }
}
