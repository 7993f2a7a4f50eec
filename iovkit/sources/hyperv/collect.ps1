<#
.SYNOPSIS
    iovkit collector: reads a Hyper-V host's SR-IOV, switch, NIC and VM facts into one JSON "raw bundle".

.DESCRIPTION
    Runs in Windows PowerShell 5.1 and PowerShell 7; needs no Python and changes nothing on the host.
    Every source runs in its own try/catch: a source that fails is recorded with its error text under
    "errors" and the script carries on, so it never stops half way. Read the bundle with
        iovkit collect --from bundle.json

.PARAMETER OutFile
    Write the bundle to this file (UTF-8). Default: write it to standard output.

.EXAMPLE
    powershell.exe -NoProfile -ExecutionPolicy Bypass -File collect.ps1 -OutFile "$env:TEMP\iovkit-bundle.json"
#>
[CmdletBinding()]
param(
    [string]$OutFile = ''
)

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$CollectorVersion = '1'

$sources = [ordered]@{}
$errors = [ordered]@{}

function Invoke-Source {
    param([string]$Name, [scriptblock]$Block)
    try {
        $sources[$Name] = & $Block
    } catch {
        if ($_.CategoryInfo.Category -eq 'ObjectNotFound' -and $_.FullyQualifiedErrorId -notmatch 'CommandNotFound') {
            # "No MSFT_NetAdapterSriovSettingData objects found": nothing to report, not a failure
            $sources[$Name] = $null
        } else {
            $errors[$Name] = (($_.Exception.Message | Out-String) -replace '\s+', ' ').Trim()
        }
    }
}

Invoke-Source 'Get-VMHost' {
    Get-VMHost | Select-Object -Property @(
        'Name', 'ComputerName', 'IovSupport', 'IovSupportReasons', 'LogicalProcessorCount',
        'NumaSpanningEnabled'
    )
}
Invoke-Source 'Get-VMSwitch' {
    Get-VMSwitch | Select-Object -Property @(
        'Name', 'Id', 'SwitchType', 'AllowManagementOS', 'NetAdapterInterfaceDescription',
        'NetAdapterInterfaceDescriptions', 'EmbeddedTeamingEnabled', 'AllowNetLbfoTeams', 'IovEnabled',
        'IovSupport', 'IovSupportReasons', 'IovVirtualFunctionCount', 'IovVirtualFunctionsInUse',
        'IovQueuePairCount', 'IovQueuePairsInUse', 'AvailableVMQueues', 'NumberVmqAllocated',
        'BandwidthReservationMode', 'PacketDirectEnabled', 'NetAdapterInterfaceGuid'
    )
}
Invoke-Source 'Get-VMSwitchTeam' {
    Get-VMSwitchTeam | Select-Object -Property @(
        'Name', 'Id', 'NetAdapterInterfaceDescription', 'TeamingMode', 'LoadBalancingAlgorithm'
    )
}
Invoke-Source 'Get-VM' {
    Get-VM | Select-Object -Property @(
        'Name', 'Id', 'State', 'OperationalStatus', 'Generation', 'ProcessorCount', 'Version'
    )
}
Invoke-Source 'Get-VMNetworkAdapter' {
    # -All: VM adapters and management-OS adapters; the latter have no Iov* members (left out, not zero)
    Get-VMNetworkAdapter -All | ForEach-Object {
        $a = $_
        $props = @('Name', 'Id', 'VMName', 'IsManagementOs', 'IsExternalAdapter', 'IsLegacy', 'SwitchName',
            'Connected', 'MacAddress', 'VMQWeight', 'VrssEnabled', 'VFDataPathActive', 'Status',
            'StatusDescription', 'IovWeight', 'IovQueuePairsRequested', 'IovQueuePairsAssigned', 'IovUsage',
            'DeviceId', 'AdapterId')
        $present = @($props | Where-Object { $a.PSObject.Properties[$_] })
        $a | Select-Object -Property $present
    }
}
Invoke-Source 'Get-NetAdapter' {
    Get-NetAdapter | Select-Object -Property @(
        'Name', 'InterfaceDescription', 'ifIndex', 'Status', 'MacAddress', 'LinkSpeed', 'ReceiveLinkSpeed',
        'TransmitLinkSpeed', 'DriverFileName', 'DriverVersionString', 'Virtual', 'HardwareInterface',
        'InterfaceGuid'
    )
}
Invoke-Source 'Get-NetAdapterSriov' {
    Get-NetAdapterSriov | Select-Object -Property @(
        'Name', 'InterfaceDescription', 'Enabled', 'SriovSupport', 'SwitchName', 'NumVFs', 'NumAllocatedVFs',
        'NumVPorts', 'NumActiveVPorts'
    )
}
Invoke-Source 'Get-NetAdapterSriovVf' {
    Get-NetAdapterSriovVf | Select-Object -Property @(
        'Name', 'InterfaceDescription', 'FunctionID', 'SwitchID', 'VmFriendlyName', 'VmID', 'VmNicID',
        'CurrentMacAddress', 'PermanentMacAddress'
    )
}
Invoke-Source 'Get-NetAdapterVmq' {
    Get-NetAdapterVmq | Select-Object -Property @(
        'Name', 'InterfaceDescription', 'Enabled', 'BaseProcessorNumber', 'MaxProcessors',
        'NumberOfReceiveQueues'
    )
}
Invoke-Source 'Get-NetAdapterVmqQueue' {
    # Which vNIC each receive queue serves, and on which processor (group:number). No row for a VM adapter
    # means the switch does not use VMQ for it (below 10 Gbps that is the default).
    Get-NetAdapterVmqQueue | ForEach-Object {
        $q = $_
        $cpu = $null
        if ($q.PSObject.Properties['ProcessorAffinity'] -and $q.ProcessorAffinity) {
            $cpu = '{0}:{1}' -f $q.ProcessorAffinity.Group, $q.ProcessorAffinity.Number
        }
        [pscustomobject]@{
            Name = $q.Name; QueueID = $q.QueueID; MacAddress = $q.MacAddress; VlanID = $q.VlanID
            Processor = $cpu; VmFriendlyName = $q.VmFriendlyName
        }
    }
}
Invoke-Source 'Get-NetAdapterRss' {
    Get-NetAdapterRss | Select-Object -Property @(
        'Name', 'InterfaceDescription', 'Enabled', 'BaseProcessorNumber', 'MaxProcessors',
        'NumberOfReceiveQueues', 'NumaNode'
    )
}
Invoke-Source 'Get-NetLbfoTeam' {
    Get-NetLbfoTeam | Select-Object -Property @(
        'Name', 'Members', 'TeamNics', 'TeamingMode', 'LoadBalancingAlgorithm', 'Status'
    )
}
Invoke-Source 'Win32_OperatingSystem' {
    Get-CimInstance -ClassName Win32_OperatingSystem | Select-Object -Property @(
        'Caption', 'Version', 'BuildNumber', 'ProductType', 'CSName', 'OSArchitecture'
    )
}
Invoke-Source 'Win32_Processor' {
    Get-CimInstance -ClassName Win32_Processor | Select-Object -Property @(
        'DeviceID', 'Name', 'Manufacturer', 'NumberOfCores', 'NumberOfLogicalProcessors',
        'SecondLevelAddressTranslationExtensions', 'VMMonitorModeExtensions', 'VirtualizationFirmwareEnabled'
    )
}
Invoke-Source 'Win32_ComputerSystem' {
    Get-CimInstance -ClassName Win32_ComputerSystem | Select-Object -Property @(
        'Name', 'DNSHostName', 'Manufacturer', 'Model', 'HypervisorPresent'
    )
}
Invoke-Source 'Get-ComputerInfo' {
    Get-ComputerInfo -Property @('HyperVisorPresent', 'HyperVRequirement*') | Select-Object -Property @(
        'HyperVisorPresent', 'HyperVRequirementDataExecutionPreventionAvailable',
        'HyperVRequirementSecondLevelAddressTranslation', 'HyperVRequirementVirtualizationFirmwareEnabled',
        'HyperVRequirementVMMonitorModeExtensions'
    )
}

Invoke-Source 'VMSMP-Parameters' {
    # BelowTenGigVmqEnabled / TenGigVmqEnabled: 0 or not set = system default, 1 on, 2 explicitly off
    $key = 'HKLM:\SYSTEM\CurrentControlSet\Services\VMSMP\Parameters'
    $p = Get-ItemProperty -Path $key -ErrorAction SilentlyContinue
    $below = $null
    $ten = $null
    if ($p -and $p.PSObject.Properties['BelowTenGigVmqEnabled']) { $below = [int]$p.BelowTenGigVmqEnabled }
    if ($p -and $p.PSObject.Properties['TenGigVmqEnabled']) { $ten = [int]$p.TenGigVmqEnabled }
    [pscustomobject]@{ BelowTenGigVmqEnabled = $below; TenGigVmqEnabled = $ten }
}

# -- guest part (inside a VM, not a Hyper-V host): which adapter carries the traffic ---------------------------
function Invoke-GuestSources {
    # Every adapter's unicast packet counters read twice, one second apart: the VF adapter's counters rising
    # means the VF carries the traffic (the check Azure documents for MANA: Get-NetAdapterStatistics).
    Invoke-Source 'Guest-NetAdapterStatistics' {
        $rows = @()
        foreach ($read in 1, 2) {
            if ($read -eq 2) { Start-Sleep -Seconds 1 }
            $rows += @(Get-NetAdapterStatistics | ForEach-Object {
                    [pscustomobject]@{
                        Read = $read; Name = $_.Name
                        ReceivedUnicastPackets = [uint64]$_.ReceivedUnicastPackets
                        SentUnicastPackets = [uint64]$_.SentUnicastPackets
                    }
                })
        }
        $rows
    }
    Invoke-Source 'Guest-NetAdapterHardwareInfo' {
        # LocationInformationString names a virtual PCI slot for a VF (Get-NetView's VF test)
        Get-NetAdapterHardwareInfo | Select-Object -Property @(
            'Name', 'InterfaceDescription', 'LocationInformationString', 'NumaNode', 'Bus', 'Device', 'Function'
        )
    }
}
if (-not $sources['Get-VMHost']) { Invoke-GuestSources }

$bundle = [ordered]@{
    format            = 'iovkit-hyperv-bundle'
    format_version    = 1
    collector_version = $CollectorVersion
    collected_at      = (Get-Date).ToUniversalTime().ToString('o')
    computer_name     = $env:COMPUTERNAME
    powershell        = [ordered]@{
        edition = "$($PSVersionTable.PSEdition)"
        version = "$($PSVersionTable.PSVersion)"
    }
    sources           = $sources
    errors            = $errors
}

try {
    if ($PSVersionTable.PSVersion.Major -ge 6) {
        $json = $bundle | ConvertTo-Json -Depth 8 -EnumsAsStrings
    } else {
        $json = $bundle | ConvertTo-Json -Depth 8
    }
} catch {
    $fallback = [ordered]@{
        format = 'iovkit-hyperv-bundle'; format_version = 1; collector_version = $CollectorVersion
        computer_name = $env:COMPUTERNAME; sources = [ordered]@{}
        errors = [ordered]@{ 'Get-VMHost' = "ConvertTo-Json failed: $($_.Exception.Message)" }
    }
    $json = $fallback | ConvertTo-Json -Depth 4
}

if ($OutFile) {
    [System.IO.File]::WriteAllText($OutFile, $json, (New-Object System.Text.UTF8Encoding($false)))
} else {
    Write-Output $json
}
