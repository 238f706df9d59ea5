//! Which jurisdiction a cloud region is in, for the regions whose names say so. `None` means
//! the converter cannot tell and must say what it assumed.

use switchyard_types::Jurisdiction;

/// An AWS region (`eu-central-1`, `ap-northeast-1`, ...).
pub(crate) fn aws(region: &str) -> Option<Jurisdiction> {
    use Jurisdiction::*;
    Some(match region {
        "eu-west-2" => Uk,
        "eu-central-2" => Ch,
        "ap-northeast-1" | "ap-northeast-3" => Jp,
        "ap-northeast-2" => Kr,
        "ap-southeast-2" | "ap-southeast-4" => Au,
        "ap-south-1" | "ap-south-2" => In,
        "ap-southeast-1" => Sg,
        "sa-east-1" => Br,
        r if r.starts_with("us-") => Us,
        r if r.starts_with("eu-") => Eu,
        r if r.starts_with("ca-") => Ca,
        _ => return None,
    })
}

/// A Google Cloud location (`us-central1`, `europe-west4`, `global`, ...).
pub(crate) fn gcp(location: &str) -> Option<Jurisdiction> {
    use Jurisdiction::*;
    Some(match location {
        "global" => Global,
        "europe-west2" => Uk,
        "europe-west6" => Ch,
        "asia-northeast1" | "asia-northeast2" => Jp,
        "asia-northeast3" => Kr,
        "asia-south1" | "asia-south2" => In,
        "asia-southeast1" => Sg,
        "southamerica-east1" => Br,
        l if l.starts_with("us-") => Us,
        l if l.starts_with("europe-") => Eu,
        l if l.starts_with("northamerica-") => Ca,
        l if l.starts_with("australia-") => Au,
        _ => return None,
    })
}

/// Azure regions whose names can appear in endpoint host names, with their jurisdictions.
const AZURE: &[(&str, Jurisdiction)] = &[
    ("eastus", Jurisdiction::Us),
    ("eastus2", Jurisdiction::Us),
    ("westus", Jurisdiction::Us),
    ("westus2", Jurisdiction::Us),
    ("westus3", Jurisdiction::Us),
    ("centralus", Jurisdiction::Us),
    ("northcentralus", Jurisdiction::Us),
    ("southcentralus", Jurisdiction::Us),
    ("westeurope", Jurisdiction::Eu),
    ("northeurope", Jurisdiction::Eu),
    ("swedencentral", Jurisdiction::Eu),
    ("francecentral", Jurisdiction::Eu),
    ("germanywestcentral", Jurisdiction::Eu),
    ("italynorth", Jurisdiction::Eu),
    ("spaincentral", Jurisdiction::Eu),
    ("polandcentral", Jurisdiction::Eu),
    ("norwayeast", Jurisdiction::Eu),
    ("switzerlandnorth", Jurisdiction::Ch),
    ("uksouth", Jurisdiction::Uk),
    ("ukwest", Jurisdiction::Uk),
    ("canadaeast", Jurisdiction::Ca),
    ("canadacentral", Jurisdiction::Ca),
    ("japaneast", Jurisdiction::Jp),
    ("japanwest", Jurisdiction::Jp),
    ("koreacentral", Jurisdiction::Kr),
    ("australiaeast", Jurisdiction::Au),
    ("southindia", Jurisdiction::In),
    ("centralindia", Jurisdiction::In),
    ("southeastasia", Jurisdiction::Sg),
    ("brazilsouth", Jurisdiction::Br),
];

/// The Azure region named in an endpoint host, when one of its labels (or a `-`-separated
/// part of the resource name) is a region: `eastus.api.cognitive.microsoft.com`,
/// `contoso-swedencentral.openai.azure.com`. Resource names are chosen freely, so most hosts
/// say nothing.
pub(crate) fn azure_from_host(host: &str) -> Option<(&'static str, Jurisdiction)> {
    host.split(['.', '-'])
        .find_map(|part| AZURE.iter().find(|(name, _)| *name == part).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_map_to_the_jurisdiction_their_law_applies_in() {
        assert_eq!(aws("us-east-1"), Some(Jurisdiction::Us));
        assert_eq!(aws("eu-west-2"), Some(Jurisdiction::Uk));
        assert_eq!(aws("eu-west-1"), Some(Jurisdiction::Eu));
        assert_eq!(aws("me-south-1"), None);
        assert_eq!(gcp("europe-west4"), Some(Jurisdiction::Eu));
        assert_eq!(gcp("us-central1"), Some(Jurisdiction::Us));
        assert_eq!(gcp("me-central1"), None);
        assert_eq!(
            azure_from_host("contoso-swedencentral.openai.azure.com"),
            Some(("swedencentral", Jurisdiction::Eu))
        );
        assert_eq!(
            azure_from_host("my-endpoint-canada-berri992.openai.azure.com"),
            None
        );
    }
}
