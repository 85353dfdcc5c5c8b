import Foundation

/// Model names and which models a configuration selects.
///
/// A model's name is its file name without the model extension: `mobileone_s0.mlmodelc`,
/// `mobileone_s0.mlpackage` and `mobileone_s0.mlmodel` are all `mobileone_s0`. A configuration
/// may name models either way.
public enum ModelSelection {
    /// File extensions of Core ML models: compiled, package, specification.
    public static let modelExtensions = ["mlmodelc", "mlpackage", "mlmodel"]

    /// Whether `fileName` ends in a model extension (case-insensitive).
    public static func hasModelExtension(_ fileName: String) -> Bool {
        modelExtension(of: fileName) != nil
    }

    /// The model extension of `fileName`, lower-cased, or nil.
    public static func modelExtension(of fileName: String) -> String? {
        let last = lastComponent(of: fileName)
        guard let dot = last.lastIndex(of: ".") else { return nil }
        let ext = last[last.index(after: dot)...].lowercased()
        return modelExtensions.contains(ext) ? ext : nil
    }

    /// The model name of a file name or path: its last component without a model extension.
    /// A trailing slash is ignored. `"Models/mobileone_s0.mlmodelc/"` -> `"mobileone_s0"`.
    public static func modelName(fromFileName fileName: String) -> String {
        let last = lastComponent(of: fileName)
        guard modelExtension(of: last) != nil, let dot = last.lastIndex(of: ".") else {
            return last
        }
        return String(last[..<dot])
    }

    /// Chooses the models to run.
    ///
    /// - Parameters:
    ///   - available: the models found, in any order.
    ///   - name: the model name of an item.
    ///   - requested: ``BenchmarkConfiguration/models``; empty selects everything.
    /// - Returns: `selected`: everything sorted by name when `requested` is empty, otherwise the
    ///   requested models in requested order (each once); `missing`: requested entries with no
    ///   available model, as given.
    public static func select<Item>(
        from available: [Item],
        name: (Item) -> String,
        requested: [String]
    ) -> (selected: [Item], missing: [String]) {
        if requested.isEmpty {
            let sorted = available.sorted { name($0) < name($1) }
            return (sorted, [])
        }
        var selected: [Item] = []
        var missing: [String] = []
        var seen = Set<String>()
        for entry in requested {
            let wanted = modelName(fromFileName: entry)
            guard seen.insert(wanted).inserted else { continue }
            if let match = available.first(where: { name($0) == wanted }) {
                selected.append(match)
            } else {
                missing.append(entry)
            }
        }
        return (selected, missing)
    }

    private static func lastComponent(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") {
            trimmed = trimmed.dropLast()
        }
        if let slash = trimmed.lastIndex(of: "/"), trimmed.count > 1 {
            return String(trimmed[trimmed.index(after: slash)...])
        }
        return String(trimmed)
    }
}
