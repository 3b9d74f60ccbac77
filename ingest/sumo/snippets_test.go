package sumo

// Real SUMO 1.15 output of the Bologna "Andrea Costa" scenario (DLR-TS sumo-scenarios, EPL-2.0), cut to a few
// lines: scripts/sumo/run-bologna.sh.

const fcdSnippet = `<?xml version="1.0" encoding="UTF-8"?>

<!-- generated on 2026-11-27 10:12:35 by Eclipse SUMO sumo Version 1.15.0
<configuration>
    <input>
        <net-file value="/tmp/bo/scenario/acosta_buslanes.net.xml"/>
    </input>
</configuration>
-->

<fcd-export xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="http://sumo.dlr.de/xsd/fcd_file.xsd">
    <timestep time="0.00">
        <vehicle id="Audinot_7_0" x="11.327482" y="44.490448" angle="353.90" type="passenger4" speed="0.00" pos="0.00" lane="131_0" slope="0.00"/>
        <vehicle id="Costa_12_0" x="11.308533" y="44.493130" angle="68.91" type="passenger1" speed="0.00" pos="0.00" lane="78[0]_0" slope="0.00"/>
        <vehicle id="bus_130_0" x="11.318648" y="44.501820" angle="112.51" type="bus" speed="0.00" pos="0.00" lane="121_0" slope="0.00"/>
    </timestep>
    <timestep time="1.00">
        <vehicle id="Audinot_7_0" x="11.327480" y="44.490465" angle="353.90" type="passenger4" speed="1.83" pos="1.83" lane="131_0" slope="0.00"/>
        <vehicle id="Costa_12_0" x="11.308549" y="44.493134" angle="68.91" type="passenger1" speed="1.32" pos="1.32" lane="78[0]_0" slope="0.00"/>
        <vehicle id="bus_130_0" x="11.318667" y="44.501814" angle="112.51" type="bus" speed="1.63" pos="1.63" lane="121_0" slope="0.00"/>
    </timestep>
</fcd-export>
`

const e1Snippet = `<?xml version="1.0" encoding="UTF-8"?>

<!-- generated on 2026-11-27 10:12:35 by Eclipse SUMO sumo Version 1.15.0
-->

<detector xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="http://sumo.dlr.de/xsd/det_e1_file.xsd">
    <interval begin="0.00" end="60.00" id="0.127_2.73_6_1__l0" nVehContrib="1" flow="60.00" occupancy="0.87" speed="9.60" harmonicMeanSpeed="9.60" length="5.00" nVehEntered="1"/>
    <interval begin="0.00" end="60.00" id="0.127_2.73_6_1__l1" nVehContrib="5" flow="300.00" occupancy="22.61" speed="11.26" harmonicMeanSpeed="9.75" length="5.00" nVehEntered="6"/>
    <interval begin="0.00" end="60.00" id="0.127_2.73_4_1__l0" nVehContrib="0" flow="0.00" occupancy="0.00" speed="-1.00" harmonicMeanSpeed="-1.00" length="-1.00" nVehEntered="0"/>
</detector>
`

// detectorsSnippet is the head of acosta_detectors.add.xml, with its commented-out detectors; the last pos is
// made negative to cover SUMO's from-the-lane-end convention.
const detectorsSnippet = `<add>
    <e1Detector id="0.127_2.73_6_1__l0" lane="104_0" pos="23" freq="1800" file="e1_output.xml"/>
    <e1Detector id="0.127_2.73_6_1__l1" lane="104_1" pos="23" freq="1800" file="e1_output.xml"/>
    <e1Detector id="0.127_2.73_4_1__l0" lane="15_0" pos="77.542050042" freq="1800" file="e1_output.xml"/>


    <!-- e1Detector id="2.19_2.19_6_1__l0" lane="83_0" pos="40" freq="1800" file="e1_output.xml"/ -->
    <!-- e1Detector id="2.19_2.19_2_1__l0" lane="83_0" pos="37" freq="1800" file="e1_output.xml"/ -->
    <e1Detector id="2.19_2.18_4_1__l0" lane="86_0" pos="-31.3626881232" freq="1800" file="e1_output.xml"/>
</add>
`
